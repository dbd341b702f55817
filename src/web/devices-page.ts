// The device list (index.html): every device of the registry (GET /api/devices, all pages), filtered as you
// type, refreshed every REFRESH_MS.
import { forgetToken, getJson, isApiError } from './api.js';
import { formatTime } from './series.js';

interface ListedDevice {
  device_id: string;
  first_seen_ms: number;
  last_seen_ms: number;
  last_seq: number | null;
  batches_today: number;
  samples_today: number;
  state: 'online' | 'offline';
}

const REFRESH_MS = 15_000;
/** Pages of 1000 read at most (the registry's page size): the list shows the first 20,000 devices. */
const MAX_PAGES = 20;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const search = byId<HTMLInputElement>('search');
const stateSelect = byId<HTMLSelectElement>('state');
const status = byId<HTMLParagraphElement>('status');
const tbody = byId<HTMLTableElement>('devices').tBodies[0]!;
let devices: ListedDevice[] = [];
let truncated = false;

async function load(): Promise<void> {
  const all: ListedDevice[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const q = new URLSearchParams({ limit: '1000' });
    if (after !== null) q.set('after', after);
    const page: { devices: ListedDevice[]; next: string | null } = await getJson(`/api/devices?${q}`);
    all.push(...page.devices);
    after = page.next;
  } while (after !== null && ++pages < MAX_PAGES);
  devices = all;
  truncated = after !== null;
}

/** "3 min ago" beside the time, for a glance. */
function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

function cell(row: HTMLTableRowElement, text: string, className?: string): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(): void {
  const needle = search.value.trim().toLowerCase();
  const state = stateSelect.value;
  const shown = devices.filter(
    (d) => (needle === '' || d.device_id.toLowerCase().includes(needle)) && (state === '' || d.state === state),
  );
  const now = Date.now();
  const rows = shown.map((d) => {
    const tr = document.createElement('tr');
    tr.dataset.device = d.device_id;
    tr.dataset.state = d.state;
    const th = document.createElement('th');
    th.scope = 'row';
    const a = document.createElement('a');
    a.href = `device.html?id=${encodeURIComponent(d.device_id)}`;
    a.textContent = d.device_id;
    th.append(a);
    tr.append(th);
    const st = cell(tr, '');
    const badge = document.createElement('span');
    badge.className = `badge state-${d.state}`;
    badge.textContent = d.state;
    st.append(badge);
    const seen = cell(tr, '');
    const time = document.createElement('time');
    time.dateTime = new Date(d.last_seen_ms).toISOString();
    time.textContent = `${formatTime(d.last_seen_ms)} (${ago(d.last_seen_ms, now)})`;
    seen.append(time);
    cell(tr, d.batches_today.toLocaleString('en'), 'num');
    cell(tr, d.samples_today.toLocaleString('en'), 'num');
    cell(tr, formatTime(d.first_seen_ms));
    return tr;
  });
  tbody.replaceChildren(...rows);
  const online = devices.filter((d) => d.state === 'online').length;
  status.textContent =
    `${shown.length} of ${devices.length} devices shown; ${online} online, ${devices.length - online} offline` +
    (truncated ? ` (the first ${devices.length} only)` : '') +
    '.';
}

let timer: number | undefined;

async function refresh(): Promise<void> {
  try {
    await load();
    render();
  } catch (e) {
    status.textContent = `Could not load the devices: ${isApiError(e) ? e.message : String(e)}`;
    // No token given: stop asking every REFRESH_MS; "Forget token" or a reload asks again.
    if (isApiError(e) && e.status === 401) stopRefreshing();
  }
}

function startRefreshing(): void {
  timer ??= window.setInterval(() => void refresh(), REFRESH_MS);
}

function stopRefreshing(): void {
  clearInterval(timer);
  timer = undefined;
}

search.addEventListener('input', render);
stateSelect.addEventListener('change', render);
byId<HTMLFormElement>('filters').addEventListener('submit', (e) => e.preventDefault());
byId<HTMLButtonElement>('sign-out').addEventListener('click', () => {
  forgetToken();
  startRefreshing();
  void refresh();
});
startRefreshing();
void refresh();
