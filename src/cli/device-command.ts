import type { Config } from '../config/load-config.js';
import { credentialFor, generateSecret } from '../domain/device-credential.js';
import { isValidDeviceId } from '../domain/batch-body.js';
import { createStore } from '../store/open-store.js';

export const DEVICE_ACTIONS = ['add', 'list', 'rotate', 'remove'] as const;
export type DeviceAction = (typeof DEVICE_ACTIONS)[number];

export interface CommandResult {
  exitCode: number;
  /** For stdout: what a script reads (the secret alone, the list). */
  out: string;
  /** For stderr: what a person reads. */
  note: string;
}

/**
 * `ec-server device add|list|rotate|remove`: device credentials in the configured store. A secret
 * is generated here, printed once on stdout, and never stored or logged: the store keeps only the
 * digest HA1 values (domain/device-credential.ts). Each change also writes the credentials' version
 * token, so running servers see it within about a second (auth/credential-cache.ts).
 */
export async function deviceCommand(
  config: Config,
  action: DeviceAction,
  id: string | undefined,
  json = false,
): Promise<CommandResult> {
  if (action !== 'list' && (id === undefined || !isValidDeviceId(id))) {
    return fail(
      2,
      `device ${action} needs a device id of 1-64 of [A-Za-z0-9._:-]${id ? `, not ${JSON.stringify(id)}` : ''}`,
    );
  }
  const store = createStore(config, action === 'list' ? 'read' : 'write');
  await store.open();
  try {
    const realm = config.security.realm;
    const now = Date.now();
    switch (action) {
      case 'list': {
        const all = await store.listCredentials();
        if (json) {
          const rows = all.map((c) => ({
            device_id: c.device_id,
            realm: c.realm,
            created: iso(c.created_ms),
            updated: iso(c.updated_ms),
          }));
          return { exitCode: 0, out: JSON.stringify(rows) + '\n', note: '' };
        }
        const lines = all.map((c) => `${c.device_id}\t${iso(c.created_ms)}\t${iso(c.updated_ms)}\t${c.realm}`);
        return {
          exitCode: 0,
          out: lines.length ? ['device\tcreated\tupdated\trealm', ...lines].join('\n') + '\n' : '',
          note: `${all.length} device(s) with credentials`,
        };
      }
      case 'add': {
        if (await store.readCredential(id!))
          return fail(1, `device ${id} already has credentials (use: device rotate ${id})`);
        const secret = generateSecret();
        await store.putCredential(credentialFor(id!, realm, secret, now));
        return {
          exitCode: 0,
          out: secret + '\n',
          note: `device ${id} added (realm ${realm}); its secret is printed once, above`,
        };
      }
      case 'rotate': {
        const before = await store.readCredential(id!);
        if (!before) return fail(1, `device ${id} has no credentials (use: device add ${id})`);
        const secret = generateSecret();
        await store.putCredential(credentialFor(id!, realm, secret, now, before.created_ms));
        return {
          exitCode: 0,
          out: secret + '\n',
          note:
            `device ${id}: new secret printed once, above; ` +
            'the old one stops working within about a second on every running server',
        };
      }
      case 'remove':
        return (await store.removeCredential(id!))
          ? { exitCode: 0, out: '', note: `device ${id}: credentials removed (its stored data is kept)` }
          : fail(1, `device ${id} has no credentials`);
    }
  } finally {
    await store.close();
  }
}

function fail(exitCode: number, note: string): CommandResult {
  return { exitCode, out: '', note };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
