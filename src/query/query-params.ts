import { isValidDeviceId } from '../domain/device-id.js';
import { QueryError } from '../errors.js';

export type Step = 'raw' | '1s' | '1m' | '1h' | '1d';
export const STEPS: readonly Step[] = ['raw', '1s', '1m', '1h', '1d'];

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

/** Length of a step's bucket, ms. */
export const STEP_MS: Record<Exclude<Step, 'raw'>, number> = {
  '1s': 1000,
  '1m': 60_000,
  '1h': HOUR_MS,
  '1d': DAY_MS,
};

/**
 * The longest span one query may cover per step: a raw hour of a 1 kHz meter is 3.6 M samples; 1s over a
 * day is 86,400 buckets; the coarser steps read one day of minute rollups (~1,440 rows) per day.
 */
export const MAX_SPAN_MS: Record<Step, number> = {
  raw: HOUR_MS,
  '1s': DAY_MS,
  '1m': 31 * DAY_MS,
  '1h': 366 * DAY_MS,
  '1d': 366 * DAY_MS,
};

/** Longest span of GET .../daily and .../sync. */
export const MAX_DAYS = 366;

/**
 * An instant given as epoch milliseconds (digits) or ISO-8601; an ISO date and time without a zone is
 * UTC (Date.parse would read it as local time). NaN when it is neither.
 */
export function parseInstant(text: string): number {
  if (/^-?\d{1,15}$/.test(text)) return Number(text);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(text)) return NaN;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) || text.length === 10 ? text : `${text}Z`;
  return Date.parse(zoned.replace(' ', 'T'));
}

/** The last value of a query parameter given once or repeated (fastify's parser gives strings). */
export function lastParam(q: Record<string, unknown>, k: string): string | undefined {
  const v = q[k];
  const last: unknown = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof last === 'string' ? last : undefined;
}

export interface SpanQuery {
  device: string;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
}

export interface ConsumptionParams extends SpanQuery {
  step: Step;
}

function instant(q: Record<string, unknown>, name: 'from' | 'to', fallback: number): number {
  const text = lastParam(q, name);
  if (text === undefined || text === '') return fallback;
  const ms = parseInstant(text);
  if (!Number.isFinite(ms)) {
    throw new QueryError('EC_QUERY_BAD_PARAM', `${name}=${JSON.stringify(text)} is not epoch ms or ISO-8601 (UTC)`);
  }
  return ms;
}

/** The device id of a path, or a 400. */
export function deviceParam(id: string): string {
  if (!isValidDeviceId(id)) {
    throw new QueryError('EC_QUERY_BAD_PARAM', `${JSON.stringify(id)} is not a device id (1-64 of [A-Za-z0-9._:-])`);
  }
  return id;
}

/**
 * from/to (default: the last `defaultSpan` ms up to now), checked: to after from, span at most `maxSpan`.
 * Bucketed queries widen [from, to) to whole buckets of `alignMs`.
 */
export function spanParams(
  device: string,
  q: Record<string, unknown>,
  o: { maxSpanMs: number; defaultSpanMs: number; alignMs?: number; now?: number; what: string },
): SpanQuery {
  const now = o.now ?? Date.now();
  let to = instant(q, 'to', now);
  let from = instant(q, 'from', to - o.defaultSpanMs);
  if (o.alignMs) {
    from = Math.floor(from / o.alignMs) * o.alignMs;
    to = Math.ceil(to / o.alignMs) * o.alignMs;
  }
  if (!(to > from)) throw new QueryError('EC_QUERY_BAD_PARAM', `to (${to}) must be after from (${from})`);
  if (to - from > o.maxSpanMs) {
    throw new QueryError(
      'EC_QUERY_SPAN_TOO_LONG',
      `${o.what} spans ${to - from} ms; at most ${o.maxSpanMs} ms (${o.maxSpanMs / HOUR_MS} h) per request`,
    );
  }
  return { device: deviceParam(device), from, to };
}

/** The parameters of GET /api/devices/:id/consumption (and ec-export). */
export function consumptionParams(device: string, q: Record<string, unknown>, now?: number): ConsumptionParams {
  const stepText = lastParam(q, 'step') ?? '1m';
  if (!(STEPS as readonly string[]).includes(stepText)) {
    throw new QueryError('EC_QUERY_BAD_PARAM', `step=${JSON.stringify(stepText)} is not one of ${STEPS.join(', ')}`);
  }
  const step = stepText as Step;
  const span = spanParams(device, q, {
    maxSpanMs: MAX_SPAN_MS[step],
    defaultSpanMs: step === 'raw' ? 60_000 : step === '1s' ? HOUR_MS : DAY_MS,
    ...(step === 'raw' ? {} : { alignMs: STEP_MS[step] }),
    ...(now === undefined ? {} : { now }),
    what: `step=${step}`,
  });
  return { ...span, step };
}

/** The parameters of GET .../daily and .../sync: whole UTC days, default the last 7. */
export function dayParams(device: string, q: Record<string, unknown>, now?: number): SpanQuery {
  return spanParams(device, q, {
    maxSpanMs: MAX_DAYS * DAY_MS,
    defaultSpanMs: 7 * DAY_MS,
    alignMs: DAY_MS,
    ...(now === undefined ? {} : { now }),
    what: 'the request',
  });
}
