import { hash, randomBytes } from 'node:crypto';

/**
 * A device's credential as the store keeps it: never the secret itself, only the digest HA1
 * values (RFC 3261 22.4, RFC 8760: H(username ":" realm ":" password)) for the two algorithms we
 * offer. HA1 is what verifying a digest needs; it is specific to the realm, so a realm change
 * means rotating every device. It is still a password equivalent for digest authentication:
 * the store must be protected like a password file (docs/security.md).
 */
export interface DeviceCredential {
  device_id: string;
  realm: string;
  ha1_md5: string;
  ha1_sha256: string;
  /** ms since the epoch. */
  created_ms: number;
  /** ms since the epoch of the last add or rotate. */
  updated_ms: number;
}

export type DigestAlgorithm = 'MD5' | 'SHA-256';

const NODE_HASH: Record<DigestAlgorithm, string> = { MD5: 'md5', 'SHA-256': 'sha256' };

/** One-shot hashing (crypto.hash): a digest check hashes three times per request. */
export function digestHex(algorithm: DigestAlgorithm, data: string | Buffer): string {
  return hash(NODE_HASH[algorithm], data, 'hex');
}

export function ha1(algorithm: DigestAlgorithm, device: string, realm: string, secret: string): string {
  return digestHex(algorithm, `${device}:${realm}:${secret}`);
}

/** A new random secret: 24 bytes, base64url (32 characters, no quoting needed anywhere). */
export function generateSecret(): string {
  return randomBytes(24).toString('base64url');
}

/** The credential a secret gives a device in a realm. */
export function credentialFor(
  device: string,
  realm: string,
  secret: string,
  now: number,
  created = now,
): DeviceCredential {
  return {
    device_id: device,
    realm,
    ha1_md5: ha1('MD5', device, realm, secret),
    ha1_sha256: ha1('SHA-256', device, realm, secret),
    created_ms: created,
    updated_ms: now,
  };
}

/**
 * A new value of the credentials' version token (ConsumptionStore.credentialsVersion): the time and
 * random bytes, so that two changes in the same millisecond by two processes still differ. Readers
 * only compare it for equality, so clocks need not agree.
 */
export function newCredentialsVersion(): string {
  return `${Date.now()}-${randomBytes(6).toString('hex')}`;
}
