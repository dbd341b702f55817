import { createHmac, timingSafeEqual } from 'node:crypto';
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
  /** Per device: helloProof() over the challenge's nonce. A device without one is unproven. */
  proofs?: Record<string, string>;
  /** The meter's watermark at the hello (see DigestResponse.final). */
  final?: number;
}
/** The server's first frame: what the hello's proofs are computed over. */
export interface Challenge {
  type: 'challenge';
  version: number;
  /** Random, fresh per connection (base64url of 32 bytes). */
  nonce: string;
  /** security.realm: the meter derives HA1 from it (H(device:realm:secret)). */
  realm: string;
}
export interface Welcome {
  type: 'welcome';
  version: number;
  period_s: number;
  /** Devices of the hello proven by their proofs (the others, if any, are synced anonymously). */
  proven?: number;
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
  | {
      id: number;
      type: 'digest';
      intervals: IntervalSummary[];
      /**
       * The meter's watermark: the epoch second before which it will journal nothing more, for any of its
       * devices (what it declares final). The server records a period only when it ends at or before it.
       */
      final?: number;
    }
  | { id: number; type: 'summaries'; summaries: WireSummary[] }
  | { id: number; type: 'batches'; batches: WireBatch[] };

export type SyncMessage = Hello | Challenge | Welcome | ErrorMessage | SyncRequest | SyncResponse;

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

/**
 * A hello's proof that the meter holds a device's secret: HMAC-SHA-256 keyed with the device's
 * SHA-256 HA1 (hex, as the store keeps it: H(device:realm:secret)) over `nonce ":" device`, in
 * lowercase hex. The nonce is fresh per connection, so a proof seen once is worth nothing later.
 */
export function helloProof(ha1Sha256: string, nonce: string, device: string): string {
  return createHmac('sha256', ha1Sha256).update(`${nonce}:${device}`).digest('hex');
}

/** Whether `proof` (peer input, any shape) is helloProof() for this HA1, nonce and device; timing-safe. */
export function proofMatches(proof: unknown, ha1Sha256: string, nonce: string, device: string): boolean {
  if (typeof proof !== 'string' || !/^[0-9a-f]{64}$/.test(proof)) return false;
  return timingSafeEqual(Buffer.from(proof, 'hex'), Buffer.from(helloProof(ha1Sha256, nonce, device), 'hex'));
}
