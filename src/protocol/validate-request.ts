import { requestError, type SipRequest } from './sip-request.js';

const REQUIRED_HEADERS: [keyof SipRequest['headers'], string][] = [
  ['from', 'From'],
  ['to', 'To'],
  ['call-id', 'Call-ID'],
  ['cseq', 'CSeq'],
];

/**
 * Checks every request must pass whatever its method (RFC 3261 8.2.1-8.2.2): version, URI
 * scheme, mandatory headers, CSeq method, and Require (we support no extensions).
 */
export function validateRequest(req: SipRequest): void {
  if (req.version !== '2.0') throw requestError(req, 'EC_SIP_VERSION', `SIP/${req.version}`);
  if (!/^sips?:/i.test(req.uri)) {
    throw requestError(
      req,
      'EC_SIP_UNSUPPORTED_URI',
      `${JSON.stringify(req.uri.slice(0, 40))} is not a sip: or sips: URI`,
    );
  }
  for (const [key, name] of REQUIRED_HEADERS) {
    const value = req.headers[key];
    if (value === undefined || value === '' || (typeof value === 'object' && (value === null || !hasContent(value)))) {
      throw requestError(req, 'EC_SIP_MISSING_HEADER', `${name} missing or unparsable`);
    }
  }
  const cseq = req.headers.cseq!;
  if (!Number.isFinite(cseq.seq)) throw requestError(req, 'EC_SIP_BAD_HEADER', 'CSeq number');
  if (cseq.method !== req.method) {
    throw requestError(req, 'EC_SIP_CSEQ_MISMATCH', `CSeq says ${cseq.method}, request is ${req.method}`);
  }
  const require = req.headers.require;
  if (typeof require === 'string' && require.trim() !== '' && req.method !== 'ACK' && req.method !== 'CANCEL') {
    const rejection = requestError(req, 'EC_SIP_BAD_EXTENSION', `unsupported ${require.trim()}`);
    rejection.error.headers.Unsupported = require.trim();
    throw rejection;
  }
}

function hasContent(v: object): boolean {
  if ('uri' in v) return Boolean((v as { uri?: string }).uri);
  return true;
}
