import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import cassandra from 'cassandra-driver';
import type { CassandraConfig } from '../../src/config/cassandra-options.js';
import { REPO } from './server-process.js';

/**
 * The real Cassandra node of scripts/cassandra/: is it there, is it required, start/stop it.
 * In CI (or with EC_REQUIRE_CASSANDRA=1) a missing node FAILS the suites; elsewhere they say
 * loudly that they were NOT RUN and skip.
 */
const run = promisify(execFile);
export const HOST = '127.0.0.1';
export const PORT = 9042;
export const REQUIRED = Boolean(process.env.CI) || process.env.EC_REQUIRE_CASSANDRA === '1';
export const CASSANDRA_SH = join(REPO, 'scripts/cassandra/cassandra.sh');

/** A store configuration for tests: the single node, RF 1, LOCAL_QUORUM, no TTL; `overrides` win. */
export function storeConfig(keyspace: string, overrides: Partial<CassandraConfig> = {}): CassandraConfig {
  return {
    hosts: [HOST],
    port: PORT,
    keyspace,
    localDc: 'datacenter1',
    replication: { class: 'SimpleStrategy', replication_factor: 1 },
    username: '',
    password: '',
    consistency: 'LOCAL_QUORUM',
    requestTimeoutMs: 2000,
    ttlDays: 0,
    createSchema: true,
    ...overrides,
  };
}

/** A real CQL round trip, not only an open port. */
export function nodeAnswers(timeoutMs = 8000): Promise<boolean> {
  return cqlAnswers([`${HOST}:${PORT}`], timeoutMs);
}

/** A real CQL round trip through these contact points; `ok` may ask more of the connected client. */
export async function cqlAnswers(
  contactPoints: string[],
  timeoutMs: number,
  ok: (client: cassandra.Client) => boolean = () => true,
): Promise<boolean> {
  const client = new cassandra.Client({
    contactPoints,
    localDataCenter: 'datacenter1',
    socketOptions: { connectTimeout: 3000, readTimeout: 5000 },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const probe = client.execute('SELECT release_version FROM system.local').then(() => ok(client));
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    return await Promise.race([probe, late]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await client.shutdown().catch(() => undefined);
  }
}

export let reachable: Promise<boolean> | undefined;

/** before-hook body: fail (CI) or skip loudly (dev) when there is no node. */
export async function requireNode(ctx: Mocha.Context): Promise<void> {
  reachable ??= nodeAnswers();
  if (await reachable) return;
  if (REQUIRED) {
    throw new Error(
      `Cassandra required (CI or EC_REQUIRE_CASSANDRA=1) but no node answers on ${HOST}:${PORT}; start one ` +
        `with npm run cassandra:start`,
    );
  }
  console.log(
    `\n  !!! Cassandra tests NOT RUN: no node on ${HOST}:${PORT} (start one with npm run cassandra:start) !!!\n`,
  );
  ctx.skip();
}

/** Like requireNode for other missing prerequisites once the node is there. */
export function missing(ctx: Mocha.Context, what: string): void {
  if (REQUIRED) throw new Error(`${what} (required: CI or EC_REQUIRE_CASSANDRA=1)`);
  console.log(`\n  !!! ${what}: test NOT RUN !!!\n`);
  ctx.skip();
}

export async function cassandraSh(cmd: 'start' | 'stop' | 'status'): Promise<{ code: number; out: string }> {
  try {
    const r = await run('bash', [CASSANDRA_SH, cmd], { timeout: 300_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: (x.stdout ?? '') + (x.stderr ?? '') };
  }
}

/** Drops a test keyspace (when the node is there). */
export async function dropKeyspace(keyspace: string): Promise<void> {
  if (!reachable || !(await reachable)) return;
  const client = new cassandra.Client({ contactPoints: [`${HOST}:${PORT}`], localDataCenter: 'datacenter1' });
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { readTimeout: 60_000 });
  } finally {
    await client.shutdown();
  }
}
