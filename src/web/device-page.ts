// The device page (device.html?id=ID&from=&to=): a zoomable consumption chart that loads the step fitting the
// zoom (series.ts), gaps drawn as breaks over a hatched band, the per-period sync strip and the daily table.
import uPlot from './vendor/uplot.js';
import { forgetToken, getJson, isApiError } from './api.js';
import {
  formatTime,
  MAX_SPAN_MS,
  parseTime,
  stepFor,
  stripPlace,
  SYNC_STATUSES,
  toChartSeries,
  type ChartSeries,
  type Consumption,
  type SyncPeriod,
} from './series.js';

interface DailyRow {
  day: string;
  total: number;
  mean: number;
  peak: number;
  peak_at: number | string | null;
  min: number;
  samples: number;
  coverage: number;
  sync_status: string | null;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Narrowest zoom: a second (a batch). */
const MIN_SPAN_MS = 1000;
/** The daily table covers at most this many days (the newest of the range). */
const MAX_DAILY_DAYS = 62;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const device = params.get('id') ?? '';
const figure = byId<HTMLElement>('chart-figure');
const chartEl = byId<HTMLDivElement>('chart');
const caption = byId<HTMLElement>('chart-caption');
const fromInput = byId<HTMLInputElement>('from');
const toInput = byId<HTMLInputElement>('to');

let from = parseTime(params.get('from'));
let to = parseTime(params.get('to'));
if (!Number.isFinite(to)) to = Date.now();
if (!Number.isFinite(from) || from >= to) from = to - HOUR;

let chart: uPlot | undefined;
let series: ChartSeries | undefined;
let periods: SyncPeriod[] = [];
let inFlight: AbortController | undefined;
let loads = 0;

/** What tests and curious people can read: the chart, the series it draws and the range. */
declare global {
  interface Window {
    ecDashboard?: { chart: uPlot | undefined; series: ChartSeries | undefined; from: number; to: number };
  }
}
const expose = () => (window.ecDashboard = { chart, series, from, to });

const api = (what: string, q: Record<string, string>) =>
  `/api/devices/${encodeURIComponent(device)}/${what}?${new URLSearchParams(q)}`;

/** Hatched bands where data is missing, under the lines. */
function drawGaps(u: uPlot): void {
  if (!series || series.gaps.length === 0) return;
  const { ctx } = u;
  const { top, height } = u.bbox;
  ctx.save();
  ctx.fillStyle = 'rgba(100, 100, 100, 0.18)';
  for (const [a, b] of series.gaps) {
    const x0 = u.valToPos(a, 'x', true);
    const x1 = u.valToPos(b, 'x', true);
    ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
  }
  ctx.restore();
}

/** Time axis labels in UTC, 24-hour, as fine as the tick spacing; the date under the first tick and at midnight. */
function timeLabels(_u: uPlot, splits: number[], _axis: number, _space: number, incr: number): string[] {
  return splits.map((ms, i) => {
    const iso = new Date(ms).toISOString();
    const date = iso.slice(0, 10);
    if (incr >= DAY) return date;
    const time = incr >= 60_000 ? iso.slice(11, 16) : incr >= 1000 ? iso.slice(11, 19) : iso.slice(11, 23);
    return i === 0 || iso.slice(11, 23) === '00:00:00.000' ? `${time}\n${date}` : time;
  });
}

function chartOptions(s: ChartSeries, width: number): uPlot.Options {
  const lines: uPlot.Series[] =
    s.step === 'raw'
      ? [{ label: 'value', stroke: '#1f4e9c', width: 1.5 }]
      : [
          { label: 'mean', stroke: '#1f4e9c', width: 2 },
          { label: 'min', stroke: '#5b6f94', width: 1, dash: [4, 3] },
          { label: 'max', stroke: '#8a3b12', width: 1, dash: [4, 3] },
        ];
  return {
    width,
    height: 320,
    ms: 1,
    tzDate: (ts) => uPlot.tzDate(new Date(ts), 'Etc/UTC'),
    scales: { x: { time: true, range: () => [from, to] } },
    series: [
      { label: 'time (UTC)', value: (_u, v) => (v === null ? '--' : formatTime(v)) },
      ...lines.map((l) => ({ ...l, spanGaps: false })),
    ],
    axes: [
      { values: timeLabels, space: 70 },
      { label: s.step === 'raw' ? 'value' : `per ${s.step}`, size: 70 },
    ],
    cursor: { drag: { x: true, y: false }, bind: { dblclick: () => () => null } },
    hooks: {
      drawClear: [drawGaps],
      setSelect: [
        (u) => {
          if (u.select.width < 3) return;
          const a = u.posToVal(u.select.left, 'x');
          const b = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          setRange(a, b);
        },
      ],
      ready: [(u) => u.over.addEventListener('dblclick', () => zoom(2))],
    },
  };
}

function drawChart(s: ChartSeries): void {
  const data = [s.x, ...s.y] as uPlot.AlignedData;
  const width = Math.max(320, chartEl.clientWidth);
  // Same series (raw has one, rollups three): new data in place; otherwise a new chart.
  if (chart?.series.length === s.y.length + 1) {
    chart.setData(data);
  } else {
    chart?.destroy();
    chart = new uPlot(chartOptions(s, width), data, chartEl);
  }
}

function renderGaps(s: ChartSeries): void {
  const items = s.gaps.map(([a, b]) => {
    const li = document.createElement('li');
    li.textContent = `no data from ${formatTime(a)} to ${formatTime(b)}`;
    return li;
  });
  byId('gap-list').replaceChildren(...items);
}

function renderStrip(): void {
  const items = periods.flatMap((p) => {
    const place = stripPlace(p, from, to);
    if (!place) return [];
    const li = document.createElement('li');
    const known = (SYNC_STATUSES as readonly string[]).includes(p.status);
    li.className = `status-${known ? p.status : 'other'}`;
    li.dataset.status = p.status;
    li.dataset.start = String(p.start);
    li.dataset.end = String(p.end);
    li.style.left = `${place.left}%`;
    li.style.width = `${place.width}%`;
    li.title = `${formatTime(p.start)} to ${formatTime(p.end)}: ${p.status}`;
    const text = document.createElement('span');
    text.className = 'visually-hidden';
    text.textContent = li.title;
    li.append(text);
    return [li];
  });
  byId('sync-strip').replaceChildren(...items);
}

function fixed(n: number | null | undefined, digits = 3): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '';
}

function renderDaily(days: DailyRow[]): void {
  const rows = days.map((d) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = d.day;
    tr.append(th);
    const peakAt = d.peak_at === null ? '' : typeof d.peak_at === 'number' ? formatTime(d.peak_at) : d.peak_at;
    const cells: [string, boolean][] = [
      [fixed(d.total), true],
      [fixed(d.mean), true],
      [fixed(d.peak), true],
      [peakAt, false],
      [fixed(d.min), true],
      [d.samples.toLocaleString('en'), true],
      [`${fixed(d.coverage * 100, 1)} %`, true],
      [d.sync_status ?? '', false],
    ];
    for (const [text, num] of cells) {
      const td = tr.insertCell();
      td.textContent = text;
      if (num) td.className = 'num';
    }
    return tr;
  });
  byId<HTMLTableElement>('daily').tBodies[0]!.replaceChildren(...rows);
}

function describe(s: ChartSeries): string {
  const points = s.y[0]!.filter((v) => v !== null).length;
  const what = s.step === 'raw' ? 'samples' : `${s.step} buckets`;
  const gaps = s.gaps.length === 0 ? 'no gaps' : `${s.gaps.length} gap${s.gaps.length === 1 ? '' : 's'}`;
  return `${formatTime(from)} to ${formatTime(to)}: ${points.toLocaleString('en')} ${what}, ${gaps}.`;
}

async function load(): Promise<void> {
  inFlight?.abort();
  const abort = (inFlight = new AbortController());
  const step = stepFor(to - from);
  const range = { from: String(Math.floor(from)), to: String(Math.ceil(to)) };
  fromInput.value = formatTime(from);
  toInput.value = formatTime(to);
  history.replaceState(null, '', `?${new URLSearchParams({ id: device, ...range })}`);
  figure.dataset.state = 'loading';
  caption.textContent = `Loading ${step === 'raw' ? 'samples' : `${step} buckets`}…`;
  const dailyFrom = Math.max(from, to - MAX_DAILY_DAYS * DAY);
  try {
    const [consumption, sync, daily] = await Promise.all([
      getJson<Consumption>(api('consumption', { ...range, step }), abort.signal),
      getJson<{ periods: SyncPeriod[] }>(api('sync', range), abort.signal),
      getJson<{ days: DailyRow[] }>(api('daily', { from: String(Math.floor(dailyFrom)), to: range.to }), abort.signal),
    ]);
    series = toChartSeries(consumption);
    periods = sync.periods;
    drawChart(series);
    renderGaps(series);
    renderStrip();
    renderDaily(daily.days);
    caption.textContent = describe(series);
    Object.assign(figure.dataset, {
      state: 'ready',
      step: series.step,
      points: String(series.y[0]!.filter((v) => v !== null).length),
      gaps: String(series.gaps.length),
      load: String(++loads),
    });
    expose();
  } catch (e) {
    if (abort.signal.aborted) return;
    figure.dataset.state = 'error';
    caption.textContent = `Could not load the data: ${isApiError(e) ? e.message : String(e)}`;
  }
}

function setRange(a: number, b: number): void {
  let lo = Math.min(a, b);
  let hi = Math.max(a, b);
  if (hi - lo < MIN_SPAN_MS) {
    const mid = (lo + hi) / 2;
    lo = mid - MIN_SPAN_MS / 2;
    hi = mid + MIN_SPAN_MS / 2;
  }
  if (hi - lo > MAX_SPAN_MS) lo = hi - MAX_SPAN_MS;
  from = Math.round(lo);
  to = Math.round(hi);
  void load();
}

/** Zooms around the middle: factor 2 shows twice the span, 0.5 half of it. */
function zoom(factor: number): void {
  const mid = (from + to) / 2;
  const half = ((to - from) * factor) / 2;
  setRange(mid - half, mid + half);
}

function pan(fraction: number): void {
  const d = (to - from) * fraction;
  setRange(from + d, to + d);
}

byId('device-id').textContent = device;
document.title = `${device} · ec-server`;
byId<HTMLFormElement>('range').addEventListener('submit', (e) => {
  e.preventDefault();
  const a = parseTime(fromInput.value.trim());
  const b = parseTime(toInput.value.trim());
  if (!Number.isFinite(a) || !Number.isFinite(b) || a >= b) {
    caption.textContent = 'From and To must be times (ISO-8601 or epoch ms), From before To.';
    return;
  }
  setRange(a, b);
});
for (const button of document.querySelectorAll<HTMLButtonElement>('.toolbar button')) {
  button.addEventListener('click', () => {
    const span = Number(button.dataset.span);
    if (span > 0) return setRange(Date.now() - span, Date.now());
    const actions: Record<string, () => void> = {
      earlier: () => pan(-0.5),
      later: () => pan(0.5),
      'zoom-in': () => zoom(0.5),
      'zoom-out': () => zoom(2),
    };
    actions[button.dataset.action ?? '']?.();
  });
}
chartEl.addEventListener('keydown', (e) => {
  const keys: Record<string, () => void> = {
    '+': () => zoom(0.5),
    '=': () => zoom(0.5),
    '-': () => zoom(2),
    ArrowLeft: () => pan(-0.25),
    ArrowRight: () => pan(0.25),
  };
  const act = keys[e.key];
  if (act) {
    e.preventDefault();
    act();
  }
});
byId<HTMLButtonElement>('sign-out').addEventListener('click', () => {
  forgetToken();
  void load();
});
let resizeTimer: number | undefined;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(
    () => chart?.setSize({ width: Math.max(320, chartEl.clientWidth), height: 320 }),
    150,
  );
});
if (device === '') caption.textContent = 'No device: open this page from the device list.';
else void load();
