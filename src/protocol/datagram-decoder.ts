import {
  decodeError,
  contentLengthOf,
  oversizeHead,
  parseHead,
  requestError,
  type Decoded,
  type Limits,
} from './sip-request.js';
import { findHeadEnd, headText, skipLeadingCrlf } from './head-scan.js';

/**
 * Frames one UDP datagram as a SIP request (RFC 3261 18.3): leading CRLFs are ignored, the head
 * ends at the first blank line, Content-Length is optional, a body shorter than Content-Length is
 * a 400, and bytes after Content-Length are discarded.
 */
export function decodeDatagram(buf: Buffer, limits: Limits): Decoded {
  const start = skipLeadingCrlf(buf, 0, buf.length);
  if (start === buf.length) return { kind: 'discard', reason: 'keep-alive (CRLF only)' };
  if (buf[start] === 0x20 || buf[start] === 0x09) return { kind: 'discard', reason: 'starts with whitespace' };

  const headEnd = findHeadEnd(buf, start, buf.length);
  const headStop = headEnd < 0 ? buf.length : headEnd;
  try {
    // The size limit applies before parsing: an oversize head is parsed only as far as the limit,
    // to find a Via to answer 513 to.
    if (headStop - start > limits.maxHeaderBytes) {
      throw oversizeHead(headText(buf, start, start + limits.maxHeaderBytes), limits.maxHeaderBytes, false);
    }
    const head = headText(buf, start, headStop);
    const req = parseHead(head);
    if (headEnd < 0) throw requestError(req, 'EC_SIP_BAD_HEADER', 'no blank line after the headers');
    const length = contentLengthOf(head, req, limits);
    const bodyStart = headEnd + 4;
    const available = buf.length - bodyStart;
    if (length !== undefined && length > available) {
      throw requestError(req, 'EC_SIP_BAD_CONTENT_LENGTH', `${length} exceeds the ${available}-byte body`);
    }
    const bodyLength = length ?? available;
    if (bodyLength > limits.maxBodyBytes) {
      throw requestError(
        req,
        'EC_SIP_BODY_TOO_LARGE',
        `${bodyLength}-byte body exceeds the ${limits.maxBodyBytes}-byte limit`,
      );
    }
    req.body = buf.subarray(bodyStart, bodyStart + bodyLength);
    return { kind: 'request', request: req };
  } catch (e) {
    return decodeError(e);
  }
}
