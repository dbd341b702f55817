import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { ConfigError } from '../errors.js';
import type { Config, TlsConfig } from './load-config.js';

/** What a TLS listener needs: Node's server options, the handshake deadline, and the client-certificate check. */
export interface ServerTls {
  options: tls.TlsOptions;
  handshakeTimeoutMs: number;
  /**
   * Why an established connection must be closed, or undefined to keep it. With tls.client_certificates=request a
   * connection without a certificate is kept, one with a certificate tls.client_ca did not sign is not (Node lets
   * both through when a certificate is only requested).
   */
  refuse(socket: tls.TLSSocket): string | undefined;
}

/** SIP over TLS: on when tls.certificate and tls.key are set; one without the other is an error. */
export function sipTls(config: Config): ServerTls | undefined {
  const t = config.tls;
  if (t.certificate === '' && t.key === '') return undefined;
  return serverTls(t, 'tls.certificate', t.certificate, 'tls.key', t.key);
}

/** Sync over TLS (sync.tls=true): sync.tls_certificate/sync.tls_key, else the SIP certificate. */
export function syncTls(config: Config): ServerTls | undefined {
  if (!config.sync.tls) return undefined;
  const t = config.tls;
  const { tlsCertificate, tlsKey } = config.sync;
  if (tlsCertificate !== '' || tlsKey !== '') {
    return serverTls(t, 'sync.tls_certificate', tlsCertificate, 'sync.tls_key', tlsKey);
  }
  if (t.certificate === '') {
    throw new ConfigError(t.origins['sync.tls'], 'sync.tls', 'is true but no certificate is set (tls.certificate)');
  }
  return serverTls(t, 'tls.certificate', t.certificate, 'tls.key', t.key);
}

function serverTls(t: TlsConfig, certKey: string, certPath: string, keyKey: string, keyPath: string): ServerTls {
  if (certPath === '') throw new ConfigError(t.origins[certKey], certKey, `must be set with ${keyKey}`);
  if (keyPath === '') throw new ConfigError(t.origins[keyKey], keyKey, `must be set with ${certKey}`);
  const chain = t.ca === '' ? '' : `\n${readPem(t, 'tls.ca', t.ca)}`;
  const cert = readPem(t, certKey, certPath) + chain;
  const key = readPem(t, keyKey, keyPath);
  const mode = t.clientCertificates;
  if (mode !== 'none' && t.clientCa === '') {
    throw new ConfigError(
      t.origins['tls.client_ca'],
      'tls.client_ca',
      `must be set with tls.client_certificates=${mode}`,
    );
  }
  const options: tls.TlsOptions = {
    cert,
    key,
    minVersion: 'TLSv1.2',
    ...(mode === 'none'
      ? {}
      : { requestCert: true, rejectUnauthorized: mode === 'require', ca: readPem(t, 'tls.client_ca', t.clientCa) }),
  };
  try {
    // Fails here, at start, on a key that does not match its certificate or a file that is not PEM.
    tls.createSecureContext(options);
  } catch (e) {
    throw new ConfigError(
      t.origins[keyKey],
      keyKey,
      `${keyPath} cannot be used with ${certPath} (${certKey}): ${(e as Error).message}`,
    );
  }
  return {
    options,
    handshakeTimeoutMs: t.handshakeTimeoutS * 1000,
    refuse: (socket) => {
      if (mode !== 'request' || socket.authorized) return undefined;
      const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
      return presented ? `client certificate refused: ${String(socket.authorizationError)}` : undefined;
    },
  };
}

function readPem(t: TlsConfig, key: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(
      t.origins[key],
      key,
      `file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(t.origins[key], key, `file ${path} is not PEM`);
  return text;
}
