import net from 'node:net';
import tls from 'node:tls';

/** How the client verifies the server over TLS, and proves itself when the server asks for a certificate. */
export interface ClientTls {
  /** PEM of the CA(s) that sign the server certificate; undefined = the system's trusted CAs. */
  ca?: string | Buffer;
  /** The name the server certificate must carry; default: the host connected to (an IP address is checked too). */
  servername?: string;
  /** A client certificate and its key (PEM), for servers with tls.client_certificates=request or require. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/**
 * A stream to the server: plain TCP, or TLS when `clientTls` is given. Over TLS the server certificate must verify
 * (chain to a trusted CA, name matching) or the socket fails with the reason (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE,
 * ERR_TLS_CERT_ALTNAME_INVALID): an unverified server is never spoken to. Writes before the handshake are queued.
 */
export function connectStream(host: string, port: number, clientTls?: ClientTls): net.Socket {
  if (!clientTls) return net.connect(port, host);
  return tls.connect({
    host,
    port,
    ca: clientTls.ca,
    cert: clientTls.cert,
    key: clientTls.key,
    // SNI carries names only; for an address Node checks the certificate's IP entries against the host.
    servername: clientTls.servername ?? (net.isIP(host) ? undefined : host),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
}
