import type { Logger } from 'pino';
import { SipRequestError, StoreUnavailableError } from '../errors.js';
import { parseBatchBody } from '../protocol/batch-body.js';
import type { SipRequest } from '../protocol/sip-request.js';
import type { ResponseSpec } from '../protocol/sip-response.js';
import type { Outcome } from '../protocol/transaction-layer.js';
import type { GroupCommitter } from './group-commit.js';
import { checkIntegrity } from './integrity-headers.js';
import { SequenceTracker } from './sequence-tracker.js';

export const ALLOW = 'MESSAGE, OPTIONS';
const NO_BODY = Buffer.alloc(0);
export const ACCEPT = 'text/plain';

/** RFC 3261 and common extension methods: known, so 405 rather than 501 (RFC 3261 21.4.6 vs 21.5.2). */
const KNOWN_METHODS = new Set([
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'REGISTER', 'OPTIONS', 'MESSAGE', 'SUBSCRIBE', 'NOTIFY',
  'PUBLISH', 'INFO', 'PRACK', 'UPDATE', 'REFER',
]);

const OK: ResponseSpec = Object.freeze({ status: 200, reason: 'OK' });
const answerOk = (): ResponseSpec => OK;

export interface HandlerOptions {
  retryAfterS: number;
}

/**
 * What each request method means to ec-server. Returns the response to send, null where the
 * RFC says nothing is sent (ACK), or, for a batch, a promise of the response that settles only
 * once the batch is durable.
 */
export class SipHandler {
  private readonly sequences = new SequenceTracker(100_000);
  stopping = false;

  constructor(
    private readonly committer: GroupCommitter,
    private readonly options: HandlerOptions,
    private readonly log: Logger,
  ) {}

  handle(req: SipRequest): Outcome {
    try {
      switch (req.method) {
        case 'MESSAGE':
          return this.message(req);
        case 'OPTIONS':
          return { status: 200, reason: 'OK', headers: { Allow: ALLOW, Accept: ACCEPT } };
        case 'ACK':
          return null;
        default:
          throw new SipRequestError(
            KNOWN_METHODS.has(req.method) ? 'EC_SIP_METHOD_NOT_ALLOWED' : 'EC_SIP_METHOD_UNKNOWN',
            `${req.method.slice(0, 20)} (allowed: ${ALLOW})`,
            { Allow: ALLOW },
          );
      }
    } catch (e) {
      return this.errorResponse(e);
    }
  }

  errorResponse(e: unknown): ResponseSpec {
    if (e instanceof SipRequestError) {
      const headers = { ...e.headers };
      if (e.status === 503) headers['Retry-After'] = String(this.options.retryAfterS);
      return { status: e.status, reason: e.reason, headers };
    }
    if (e instanceof StoreUnavailableError) {
      this.log.warn({ err: e.message }, 'store unavailable; answering 503');
      return { status: 503, reason: 'Store unavailable', headers: { 'Retry-After': String(this.options.retryAfterS) } };
    }
    this.log.error({ err: e }, 'unexpected error handling a request');
    return { status: 500, reason: 'Server Internal Error', headers: {} };
  }

  /** Checks and parses now (a bad batch is answered at once); the 200 waits for the commit. */
  private message(req: SipRequest): Promise<ResponseSpec> {
    if (this.stopping) throw new SipRequestError('EC_SERVER_STOPPING');
    const type = req.headers['content-type'];
    // Meters send exactly "text/plain": only anything else is taken apart.
    const mediaType = type === ACCEPT ? ACCEPT : typeof type === 'string' ? type.split(';')[0]!.trim().toLowerCase() : '';
    if (mediaType !== ACCEPT) {
      throw new SipRequestError('EC_SIP_UNSUPPORTED_MEDIA', `${mediaType ? JSON.stringify(mediaType.slice(0, 40)) : 'no Content-Type'}; accepted: ${ACCEPT}`, { Accept: ACCEPT });
    }
    // Bodies are ASCII by grammar; latin1 maps bytes 1:1 so any stray byte fails the grammar check.
    const parsed = parseBatchBody(req.body.toString('latin1'));
    // The body is a view into a socket read of up to 64 KiB shared with other requests; holding it
    // until the commit kept every such chunk alive (hundreds of MB of RSS under large TCP batches).
    req.body = NO_BODY;
    const seq = checkIntegrity(req, parsed);
    if (seq !== null) {
      const gap = this.sequences.observe(parsed.device_id, seq);
      if (gap) this.log.info({ device: parsed.device_id, seq, expected: gap.expected }, 'batch sequence gap');
    }
    // Every field written out (not a spread of `parsed`): one object shape for every batch keeps
    // the property loads down the line (group commit, hand-off to the writer) monomorphic.
    return this.committer.submit({
      device_id: parsed.device_id,
      ec_date: parsed.ec_date,
      ec_time: parsed.ec_time,
      start_us: parsed.start_us,
      end_us: parsed.end_us,
      ec_consumption_values: parsed.ec_consumption_values,
      values_count: parsed.values_count,
      values_checksum: parsed.values_checksum,
      batch_seq: seq,
      insert_time: Date.now(),
    }).then(answerOk, this.answerError);
  }

  private readonly answerError = (e: unknown): ResponseSpec => this.errorResponse(e);
}
