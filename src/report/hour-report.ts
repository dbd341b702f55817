import { batchEpochSecond, compactToEpochSecond, recordsChecksum } from '../domain/batch.js';
import type { CheckStatus, ConsumptionStore } from '../store/consumption-store.js';

export interface MinuteReport {
  /** hh:mm (UTC) */
  minute: string;
  batches: number;
  samples: number;
  secondsWithoutData: number;
  /** Sync status of this minute from ec_checksum, when a sync has checked it. */
  sync: CheckStatus | null;
}

export interface DamagedBatch {
  key: string;
  problem: string;
}

export interface HourReport {
  device: string;
  /** ISO time of the hour's start (UTC). */
  hour: string;
  /** Seconds of the hour that were due (all 3600, or up to now for the current hour). */
  secondsExpected: number;
  batches: number;
  samples: number;
  secondsWithoutData: number;
  /** Runs of seconds without data, as hh:mm:ss-hh:mm:ss. */
  gaps: { from: string; to: string; seconds: number }[];
  checksumsChecked: number;
  damaged: DamagedBatch[];
  minutes: MinuteReport[];
  /** ok: data for every due second, all intact; missing: some second has no data; damaged: a stored checksum fails. */
  result: 'ok' | 'missing' | 'damaged';
}

/**
 * What the store holds for one device and one hour, read minute by minute so memory stays
 * bounded by one minute of data. Recomputes every batch's checksum from its stored values.
 */
export async function hourReport(
  store: ConsumptionStore,
  device: string,
  hourStart: number,
  now = Date.now() / 1000,
  until = Infinity,
): Promise<HourReport> {
  // Seconds that should hold data: the whole hour, cut at `until` and at the present.
  const due = Math.max(0, Math.min(3600, Math.floor(now) - hourStart, until - hourStart));
  const covered = new Uint8Array(3600);
  const minutes: MinuteReport[] = [];
  const damaged: DamagedBatch[] = [];
  let batches = 0;
  let samples = 0;
  const checks = await store.readIntervalChecks({ device_id: device, from: hourStart, to: hourStart + 3600 });
  const minuteStatus = new Map(
    checks.filter((c) => c.interval_seconds === 60).map((c) => [c.ec_time.slice(0, 4), c.status]),
  );
  // A clean sync period is recorded once for the whole period; its minutes inherit its status.
  const periods = checks
    .filter((c) => c.interval_seconds > 60)
    .map((c) => ({
      start: compactToEpochSecond(c.ec_date + c.ec_time),
      end: compactToEpochSecond(c.ec_date + c.ec_time) + c.interval_seconds,
      status: c.status,
    }));
  const syncStatus = (minuteStart: number, hhmm: string): CheckStatus | null =>
    minuteStatus.get(hhmm) ?? periods.find((p) => p.start <= minuteStart && minuteStart < p.end)?.status ?? null;

  for (let m = 0; m < 60; m++) {
    const from = hourStart + m * 60;
    const rows = await store.readBatches({ device_id: device, from, to: from + 60 });
    let mSamples = 0;
    for (const b of rows) {
      covered[batchEpochSecond(b) - hourStart] = 1;
      mSamples += b.values_count;
      const records = b.ec_consumption_values.split(';').length;
      const key = `${b.ec_date}${b.ec_time}.${b.start_us}-${b.end_us}`;
      if (recordsChecksum(b.ec_consumption_values) !== b.values_checksum)
        damaged.push({ key, problem: 'checksum does not match values' });
      else if (records !== b.values_count)
        damaged.push({ key, problem: `values_count ${b.values_count} but ${records} records` });
    }
    let missing = 0;
    for (let s = m * 60; s < m * 60 + 60 && s < due; s++) if (!covered[s]) missing++;
    const hhmm = isoTime(from).slice(0, 5);
    minutes.push({
      minute: hhmm,
      batches: rows.length,
      samples: mSamples,
      secondsWithoutData: missing,
      sync: syncStatus(from, hhmm.replace(':', '')),
    });
    batches += rows.length;
    samples += mSamples;
  }

  const gaps: HourReport['gaps'] = [];
  for (let s = 0; s < due; s++) {
    if (covered[s]) continue;
    let e = s;
    while (e + 1 < due && !covered[e + 1]) e++;
    gaps.push({ from: isoTime(hourStart + s), to: isoTime(hourStart + e), seconds: e - s + 1 });
    s = e;
  }
  const secondsWithoutData = gaps.reduce((n, g) => n + g.seconds, 0);
  return {
    device,
    hour: new Date(hourStart * 1000).toISOString(),
    secondsExpected: due,
    batches,
    samples,
    secondsWithoutData,
    gaps,
    checksumsChecked: batches,
    damaged,
    minutes,
    result: damaged.length > 0 ? 'damaged' : secondsWithoutData > 0 || batches === 0 ? 'missing' : 'ok',
  };
}

function isoTime(sec: number): string {
  return new Date(sec * 1000).toISOString().slice(11, 19);
}

export function formatHourReport(r: HourReport): string {
  const lines = [
    `device ${r.device}, hour ${r.hour.slice(0, 13).replace('T', ' ')}:00 UTC`,
    `batches ${r.batches}, samples ${r.samples}, seconds without data ${r.secondsWithoutData} of ` +
      `${r.secondsExpected} due`,
    `checksums: ${r.checksumsChecked} checked, ${r.damaged.length} damaged`,
    '',
    'minute  batches  samples  no-data-s  sync',
    ...r.minutes.map(
      (m) =>
        `${m.minute}   ${pad(m.batches, 7)}  ${pad(m.samples, 7)}  ${pad(m.secondsWithoutData, 9)}  ${m.sync ?? '-'}`,
    ),
  ];
  if (r.gaps.length) {
    lines.push('', 'gaps (UTC):');
    for (const g of r.gaps.slice(0, 50)) lines.push(`  ${g.from}-${g.to} (${g.seconds} s)`);
    if (r.gaps.length > 50) lines.push(`  ... ${r.gaps.length - 50} more (see --json)`);
  }
  if (r.damaged.length) {
    lines.push('', 'damaged batches:');
    for (const d of r.damaged.slice(0, 50)) lines.push(`  ${d.key}: ${d.problem}`);
  }
  lines.push('', `result: ${r.result.toUpperCase()}`);
  return lines.join('\n') + '\n';
}

function pad(n: number, w: number): string {
  return String(n).padStart(w);
}
