import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/** PEM files of one key pair and its certificate. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A throwaway PKI in a temp dir: a CA, a server certificate it signed, a client certificate it signed. */
export interface TestPki {
  dir: string;
  /** The CA certificate (PEM file): what clients trust, and what the server checks client certificates against. */
  ca: string;
  /** For 127.0.0.1 and localhost. */
  server: CertFiles;
  /** A meter's certificate (CN = its device id). */
  client: CertFiles;
  /** A server certificate for the same names signed by another CA, unknown to clients. */
  rogue: CertFiles;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

interface Issuer {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

async function selfSignedCa(name: string): Promise<Issuer> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys };
}

async function leaf(issuer: Issuer, cn: string, usage: 'server' | 'client'): Promise<{ cert: string; key: string }> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
  ];
  if (usage === 'server') {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${cn}`,
    issuer: issuer.cert.subject,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions,
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** Generates the certificates of one test (ECDSA P-256: a few ms each) and writes them as PEM files. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'ec-tls-'));
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const ca = await selfSignedCa('ec-server test CA');
  const other = await selfSignedCa('someone else');
  const pair = async (name: string, issuer: Issuer, cn: string, usage: 'server' | 'client'): Promise<CertFiles> => {
    const p = await leaf(issuer, cn, usage);
    return { cert: write(`${name}.crt`, p.cert), key: write(`${name}.key`, p.key) };
  };
  return {
    dir,
    ca: write('ca.crt', ca.cert.toString('pem')),
    server: await pair('server', ca, 'localhost', 'server'),
    client: await pair('client', ca, '020000000001', 'client'),
    rogue: await pair('rogue', other, 'localhost', 'server'),
  };
}
