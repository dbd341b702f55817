import type { Logger } from 'pino';
import { SIP_ERRORS, SipRequestError, StoreUnavailableError, type SipErrorCode } from '../errors.js';
import { readLatin1 } from '../latin1.js';
import type { SipRequest } from '../protocol/sip-request.js';
import type { ResponseSpec } from '../protocol/sip-response.js';
import type { Outcome } from '../protocol/transaction-layer.js';
import type { AuthVerdict, DigestAuthenticator } from '../auth/digest-authenticator.js';
import type { RateLimit } from '../protocol/rate-limit.js';
import type { GroupCommitter } from './group-commit.js';

export const ALLOW = 'MESSAGE, OPTIONS';
const NO_BODY = Buffer.alloc(0);
export const ACCEPT = 'text/plain';

/** RFC 3261 and common extension methods: known, so 405 rather than 501 (RFC 3261 21.4.6 vs 21.5.2). */
const KNOWN_METHODS = new Set([
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'REGISTER',
  'OPTIONS',
  'MESSAGE',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'INFO',
  'PRACK',
  'UPDATE',
  'REFER',
]);

const OK: ResponseSpec = Object.freeze({ status: 200, reason: 'OK' });
const answerOk = (): ResponseSpec => OK;

export interface HandlerOptions {
  retryAfterS: number;
  /** Digest authentication of MESSAGEs; without it every MESSAGE is taken as anonymous. */
  authenticator?: DigestAuthenticator;
  /**
   * MESSAGEs per second per authenticated device (sip.device_rate_limit). Keyed by the identity the digest
   * proved, after the nonce count was accepted: a forged device id or a replayed request never takes a
   * token from the real meter's bucket. Anonymous MESSAGEs name a device nobody proved: not counted here.
   */
  deviceRateLimit?: RateLimit;
}

/**
 * What each request method means to ec-server. Returns the response to send, null where the
 * RFC says nothing is sent (ACK), or, for a batch, a promise of the response that settles only
 * once the batch is durable.
 */
export class SipHandler {
  stopping = false;
  /** Error responses by error code (the catalogue's: a bounded set), for the metrics. */
  readonly rejections: Partial<Record<SipErrorCode, number>> = {};

  constructor(
    private readonly committer: GroupCommitter,
    private readonly options: HandlerOptions,
    private readonly log: Logger,
  ) {}

  handle(req: SipRequest, source = ''): Outcome {
    try {
      switch (req.method) {
        case 'MESSAGE':
          return this.message(req, source);
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
      if (e.code === 'EC_BATCH_INTERNAL') this.log.error({ err: e.message }, 'a batch could not be handled');
      this.rejections[e.code] = (this.rejections[e.code] ?? 0) + 1;
      const headers = { ...e.headers };
      if (e.status === 503) headers['Retry-After'] = String(this.options.retryAfterS);
      return { status: e.status, reason: e.reason, headers };
    }
    if (e instanceof StoreUnavailableError) {
      this.log.warn({ err: e.message }, 'store unavailable; answering 503');
      this.rejections.EC_STORE_UNAVAILABLE = (this.rejections.EC_STORE_UNAVAILABLE ?? 0) + 1;
      const { status, reason } = SIP_ERRORS.EC_STORE_UNAVAILABLE;
      return { status, reason, headers: { 'Retry-After': String(this.options.retryAfterS) } };
    }
    this.log.error({ err: e }, 'unexpected error handling a request');
    this.rejections.EC_INTERNAL = (this.rejections.EC_INTERNAL ?? 0) + 1;
    const { status, reason } = SIP_ERRORS.EC_INTERNAL;
    return { status, reason, headers: {} };
  }

  /**
   * Checks the head now (a wrong Content-Type is answered at once); the body is parsed and checked
   * with its group's write, off the event loop where the store allows (ingest/batch-stage.ts), and
   * the 200 waits for the commit.
   */
  private message(req: SipRequest, source: string): Promise<ResponseSpec> {
    if (this.stopping) throw new SipRequestError('EC_SERVER_STOPPING');
    const type = req.headers['content-type'];
    // Meters send exactly "text/plain": only anything else is taken apart.
    const mediaType =
      type === ACCEPT ? ACCEPT : typeof type === 'string' ? type.split(';')[0]!.trim().toLowerCase() : '';
    if (mediaType !== ACCEPT) {
      throw new SipRequestError(
        'EC_SIP_UNSUPPORTED_MEDIA',
        `${mediaType ? JSON.stringify(mediaType.slice(0, 40)) : 'no Content-Type'}; accepted: ${ACCEPT}`,
        { Accept: ACCEPT },
      );
    }
    const auth = this.options.authenticator;
    if (auth) {
      const verdict = auth.verify({ method: req.method, authorization: header(req, 'authorization'), body: req.body });
      // A credential not in memory yet is looked up in the store first (credential-cache.ts).
      if (verdict instanceof Promise) return verdict.then((v) => this.admit(req, v, source), this.answerError);
      return this.admit(req, verdict, source);
    }
    return this.submit(req, source);
  }

  /** Submits an authenticated (or accepted anonymous) MESSAGE unless its device is over its rate. */
  private admit(req: SipRequest, verdict: AuthVerdict, source: string): Promise<ResponseSpec> {
    const limit = this.options.deviceRateLimit;
    if (limit && verdict.kind === 'authenticated' && !limit.take(verdict.device)) {
      throw new SipRequestError('EC_DEVICE_RATE_LIMITED', `over ${limit.ratePerS} MESSAGEs/s for this device`);
    }
    // Overload shares are per sender: the device its digest proved, else the address it came from.
    return this.submit(req, verdict.kind === 'authenticated' ? `device ${verdict.device}` : source);
  }

  /** `sender`: whom overload control counts this batch against (group-commit.ts, loop-busy.ts). */
  private submit(req: SipRequest, sender: string): Promise<ResponseSpec> {
    const body = req.body;
    // Bodies are ASCII by grammar; latin1 maps bytes 1:1 so any stray byte fails the grammar check.
    // A copy: the body is a view into a socket read of up to 64 KiB shared with other requests,
    // and holding it until the commit kept every such chunk alive (hundreds of MB of RSS under
    // large TCP batches).
    const text = readLatin1(body, 0, body.length);
    req.body = NO_BODY;
    return this.committer
      .submit(
        {
          body: text,
          count: header(req, 'x-ec-count'),
          checksum: header(req, 'x-ec-checksum'),
          seq: header(req, 'x-ec-seq'),
          insert_time: Date.now(),
        },
        sender,
      )
      .then(answerOk, this.answerError);
  }

  private readonly answerError = (e: unknown): ResponseSpec => this.errorResponse(e);
}

/** An integrity header's value as sent (trimmed), or undefined; checked against the body later. */
function header(req: SipRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v.trim() : undefined;
}
