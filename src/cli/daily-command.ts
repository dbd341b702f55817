import type { Config } from '../config/load-config.js';
import { ConsumptionQuery, type DayStats } from '../query/consumption-query.js';
import { dayParams } from '../query/query-params.js';
import { createStore } from '../store/open-store.js';
import type { CommandResult } from './device-command.js';

/**
 * `ec-server daily -i ID [--from --to] [--json]`: one device's statistics per UTC day (the same as GET
 * /api/devices/:id/daily), from the store opened read-only. from/to: epoch ms or ISO-8601 UTC; default the
 * last 7 days.
 */
export async function dailyCommand(
  config: Config,
  opts: { device: string; from?: string; to?: string; json: boolean },
  now = Date.now(),
): Promise<CommandResult> {
  const q: Record<string, unknown> = { from: opts.from, to: opts.to };
  const p = dayParams(opts.device, q, now);
  const store = createStore(config, 'read');
  await store.open();
  const days: DayStats[] = [];
  try {
    for await (const d of new ConsumptionQuery(store).daily(p.device, p.from, p.to)) days.push(d);
  } finally {
    await store.close();
  }
  const note = `${days.filter((d) => d.samples > 0).length} of ${days.length} day(s) with data for ${p.device}`;
  if (opts.json) return { exitCode: 0, out: JSON.stringify({ device: p.device, days }) + '\n', note };
  const head = 'day\ttotal\tmean\tpeak\tpeak_at\tmin\tsamples\tcoverage\tsync_status';
  const fmt = (v: number | null) => (v === null ? '-' : String(Number(v.toPrecision(10))));
  const lines = days.map((d) =>
    [
      d.day,
      fmt(d.total),
      fmt(d.mean),
      fmt(d.peak),
      d.peak_at === null ? '-' : new Date(d.peak_at).toISOString(),
      fmt(d.min),
      d.samples,
      d.coverage.toFixed(4),
      d.sync_status,
    ].join('\t'),
  );
  return { exitCode: 0, out: [head, ...lines].join('\n') + '\n', note };
}
