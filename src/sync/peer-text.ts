/** Most characters of a peer's own text (error messages, client names) that go into a log line. */
export const PEER_TEXT_MAX = 200;

/**
 * A peer's text for the log: a string cut to PEER_TEXT_MAX characters (a frame may be 4 MiB, and
 * an error frame's message was logged whole), anything else as its type.
 */
export function peerText(v: unknown): string {
  if (typeof v !== 'string') return v === undefined ? '' : `(${typeof v})`;
  return v.length > PEER_TEXT_MAX ? `${v.slice(0, PEER_TEXT_MAX)}... (${v.length} chars)` : v;
}
