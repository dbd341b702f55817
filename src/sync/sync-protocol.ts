import type { Batch, BatchKey } from '../domain/batch.js';
import { SyncProtocolError } from '../errors.js';
import type { IntervalSummary } from '../store/consumption-store.js';

/**
 * The sync protocol's messages (docs/sync-protocol.md). One JSON object per line over TCP.
 * The server asks, the client answers: requests carry an `id` that the response echoes.
 */
export const SYNC_PROTOCOL_VERSION = 1;
/** Largest frame either side accepts. A batch of 1000 samples is ~17 KB of JSON. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Most batches requested in one `batches` request, so that an answer stays under MAX_FRAME_BYTES. */
export const MAX_BATCHES_PER_REQUEST = 64;

export interface Hello {
  type: 'hello';
  version: number;
  devices: string[];
  /** Seconds of history the client journals; the server reconciles no further back. */
  retention_s: number;
  client?: string;
}
export interface Welcome {
  type: 'welcome';
  version: number;
  period_s: number;
}
export interface ErrorMessage {
  type: 'error';
  id?: number;
  code: string;
  message: string;
}

/** Server -> client requests. Ranges are epoch seconds, [from, to). */
export type SyncRequest =
  | { id: number; type: 'digest'; device: string; from: number; to: number; interval: number }
  | { id: number; type: 'summaries'; device: string; from: number; to: number }
  | { id: number; type: 'batches'; device: string; keys: BatchKey[] };

export type WireSummary = Pick<
  Batch,
  'ec_date' | 'ec_time' | 'start_us' | 'end_us' | 'values_count' | 'values_checksum'
>;
export type WireBatch = Pick<
  Batch,
  | 'device_id'
  | 'ec_date'
  | 'ec_time'
  | 'start_us'
  | 'end_us'
  | 'ec_consumption_values'
  | 'values_count'
  | 'values_checksum'
  | 'batch_seq'
>;

/** Client -> server responses. */
export type SyncResponse =
  | { id: number; type: 'digest'; intervals: IntervalSummary[] }
  | { id: number; type: 'summaries'; summaries: WireSummary[] }
  | { id: number; type: 'batches'; batches: WireBatch[] };

export type SyncMessage = Hello | Welcome | ErrorMessage | SyncRequest | SyncResponse;

/** Parses one frame; throws SyncProtocolError naming the problem. */
export function decodeFrame(line: string): SyncMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new SyncProtocolError('EC_SYNC_BAD_JSON', `frame is not JSON: ${JSON.stringify(line.slice(0, 60))}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string') {
    throw new SyncProtocolError('EC_SYNC_BAD_FRAME', 'frame is not an object with a "type"');
  }
  return v as SyncMessage;
}

export function encodeFrame(m: SyncMessage): string {
  return JSON.stringify(m) + '\n';
}

export function isDeviceList(v: unknown): v is string[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.length <= 10_000 &&
    v.every((d) => typeof d === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(d))
  );
}
