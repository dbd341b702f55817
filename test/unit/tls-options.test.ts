import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load-config.js';
import { sipTls, syncTls } from '../../src/config/tls-options.js';
import { makeTestPki, type TestPki } from '../helpers/certificates.js';

/** TLS settings are read and checked at start; every error names the key and the file. */
describe('TLS configuration', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });
  after(() => rmSync(pki.dir, { recursive: true, force: true }));

  const config = (overrides: Record<string, string>) => loadConfig({ configPath: null, overrides }).config;
  const errorOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };

  it('no certificate: no TLS; a certificate and its key: TLS, with the client-certificate policy', () => {
    expect(sipTls(config({}))).to.equal(undefined);
    expect(syncTls(config({}))).to.equal(undefined);
    const c = config({
      'tls.certificate': pki.server.cert,
      'tls.key': pki.server.key,
      'tls.client_certificates': 'require',
      'tls.client_ca': pki.ca,
      'tls.handshake_timeout': '3',
      'sync.tls': 'true',
    });
    const t = sipTls(c)!;
    expect(t.handshakeTimeoutMs).to.equal(3000);
    expect(t.options).to.include({ requestCert: true, rejectUnauthorized: true });
    expect(syncTls(c)!.options.cert).to.equal(t.options.cert);
    // tls.ca: the chain is sent after the certificate.
    const chained = sipTls(
      config({ 'tls.certificate': pki.server.cert, 'tls.key': pki.server.key, 'tls.ca': pki.ca }),
    )!;
    const caPem = readFileSync(pki.ca, 'utf8');
    expect(chained.options.cert).to.equal(`${readFileSync(pki.server.cert, 'utf8')}\n${caPem}`);
  });

  it('a missing key file names the file and tls.key; a key of another certificate is refused', () => {
    const missing = join(pki.dir, 'nowhere.key');
    const e = errorOf(() => sipTls(config({ 'tls.certificate': pki.server.cert, 'tls.key': missing })));
    expect(e).to.include('key tls.key').and.include(missing).and.include('ENOENT');
    const mismatch = errorOf(() => sipTls(config({ 'tls.certificate': pki.server.cert, 'tls.key': pki.client.key })));
    expect(mismatch).to.include('key tls.key').and.include(pki.client.key);
    const notPem = join(pki.dir, 'not-pem.crt');
    writeFileSync(notPem, 'hello');
    expect(errorOf(() => sipTls(config({ 'tls.certificate': notPem, 'tls.key': pki.server.key })))).to.include(
      'key tls.certificate',
    );
  });

  it('half a setting is an error naming the missing key', () => {
    expect(errorOf(() => sipTls(config({ 'tls.certificate': pki.server.cert })))).to.include('key tls.key');
    expect(errorOf(() => sipTls(config({ 'tls.key': pki.server.key })))).to.include('key tls.certificate');
    const base = { 'tls.certificate': pki.server.cert, 'tls.key': pki.server.key };
    expect(errorOf(() => sipTls(config({ ...base, 'tls.client_certificates': 'request' })))).to.include(
      'key tls.client_ca',
    );
    expect(errorOf(() => syncTls(config({ 'sync.tls': 'true' })))).to.include('key sync.tls');
    expect(errorOf(() => syncTls(config({ 'sync.tls': 'true', 'sync.tls_certificate': pki.server.cert })))).to.include(
      'key sync.tls_key',
    );
  });

  it('the origin is named too: a config file', () => {
    const file = join(pki.dir, 'config.properties');
    writeFileSync(file, `[TLS]\ntls.certificate=${pki.server.cert}\ntls.key=/nonexistent/server.key\n`);
    const e = errorOf(() => sipTls(loadConfig({ configPath: file }).config));
    expect(e).to.include(`config file ${file}`).and.include('key tls.key').and.include('/nonexistent/server.key');
  });
});
