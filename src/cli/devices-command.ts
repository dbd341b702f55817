import type { Config } from '../config/load-config.js';
import { asOf, type DeviceRecord } from '../domain/device-record.js';
import { stateOf, type ListedDevice } from '../registry/device-registry.js';
import { createStore } from '../store/open-store.js';
import type { CommandResult } from './device-command.js';

/** Rows per store read. */
const PAGE = 1000;

/**
 * `ec-server devices [--offline] [--json]`: the device registry as the store holds it (table ec_device, read-only
 * store), in device id order, with each device's state as of now under devices.offline_after. A running server
 * writes the table every devices.flush_seconds, so the newest seconds may be missing.
 */
export async function devicesCommand(
  config: Config,
  opts: { offline: boolean; json: boolean },
  now = Date.now(),
): Promise<CommandResult> {
  const store = createStore(config, 'read');
  await store.open();
  const rows: DeviceRecord[] = [];
  try {
    let after: string | undefined;
    for (;;) {
      const page = await store.listDevices({ limit: PAGE, ...(after === undefined ? {} : { after }) });
      rows.push(...page);
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.device_id;
    }
  } finally {
    await store.close();
  }
  const offlineAfterMs = config.devices.offlineAfterS * 1000;
  const listed: ListedDevice[] = rows
    .map((r) => ({ ...asOf(r, now), state: stateOf(r, now, offlineAfterMs) }))
    .filter((d) => !opts.offline || d.state === 'offline')
    .sort((a, b) => (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0));
  const offline = listed.filter((d) => d.state === 'offline').length;
  const note = opts.offline
    ? `${offline} device(s) offline (not seen for ${config.devices.offlineAfterS} s)`
    : `${listed.length} device(s), ${offline} offline (not seen for ${config.devices.offlineAfterS} s)`;
  if (opts.json) return { exitCode: 0, out: JSON.stringify(listed) + '\n', note };
  const lines = listed.map((d) =>
    [
      d.device_id,
      d.state,
      iso(d.first_seen_ms),
      iso(d.last_seen_ms),
      d.last_seq ?? '-',
      d.batches_today,
      d.samples_today,
    ].join('\t'),
  );
  const head = 'device\tstate\tfirst_seen\tlast_seen\tlast_seq\tbatches_today\tsamples_today';
  return { exitCode: 0, out: lines.length ? [head, ...lines].join('\n') + '\n' : '', note };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
