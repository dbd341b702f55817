import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import cassandra from 'cassandra-driver';
import type { CassandraConfig } from '../../src/config/cassandra-options.js';
import { cqlAnswers, storeConfig } from './cassandra-node.js';
import { REPO } from './server-process.js';

/**
 * The local three-node cluster of scripts/cassandra/cluster.sh (127.0.0.2-4, CQL 9042 each):
 * is it there, is it required, kill and restart its nodes. In CI (or with EC_REQUIRE_CLUSTER=1) a
 * missing cluster FAILS the suites; elsewhere they say loudly that they were NOT RUN and skip.
 */
const run = promisify(execFile);
export const CLUSTER_HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
export const CLUSTER_PORT = 9042;
export const CLUSTER_REQUIRED = Boolean(process.env.CI) || process.env.EC_REQUIRE_CLUSTER === '1';
export const CLUSTER_SH = join(REPO, 'scripts/cassandra/cluster.sh');

/** The store's configuration on the cluster: RF 3 (NetworkTopologyStrategy), LOCAL_QUORUM. */
export function clusterConfig(keyspace: string, overrides: Partial<CassandraConfig> = {}): CassandraConfig {
  return storeConfig(keyspace, {
    hosts: CLUSTER_HOSTS,
    port: CLUSTER_PORT,
    replication: { class: 'NetworkTopologyStrategy', dcs: { datacenter1: 3 } },
    ...overrides,
  });
}

/** The same as ec-server configuration keys (startTestServer, server processes). */
export function clusterSettings(keyspace: string): Record<string, string> {
  return {
    'storage.backend': 'cassandra',
    'cassandra.host': CLUSTER_HOSTS.join(','),
    'cassandra.keyspace': keyspace,
    'cassandra.replication': 'NetworkTopologyStrategy:datacenter1=3',
    'cassandra.consistency': 'LOCAL_QUORUM',
  };
}

/** Every node of the cluster is up, as the driver sees it after a real CQL round trip. */
export function clusterAnswers(timeoutMs = 10_000): Promise<boolean> {
  return cqlAnswers(
    CLUSTER_HOSTS,
    timeoutMs,
    (client) => client.hosts.values().filter((h) => h.isUp()).length === CLUSTER_HOSTS.length,
  );
}

let reachable: Promise<boolean> | undefined;

/** before-hook body: fail (CI) or skip loudly (dev) when the cluster is not up. */
export async function requireCluster(ctx: Mocha.Context): Promise<void> {
  reachable ??= clusterAnswers();
  if (await reachable) return;
  const what = `no 3-node cluster on ${CLUSTER_HOSTS.join(', ')} (start it with npm run cassandra:cluster:start)`;
  if (CLUSTER_REQUIRED) throw new Error(`Cassandra cluster required (CI or EC_REQUIRE_CLUSTER=1) but ${what}`);
  console.log(`\n  !!! Cassandra cluster tests NOT RUN: ${what} !!!\n`);
  ctx.skip();
}

/** scripts/cassandra/cluster.sh with a node number: kill-node (SIGKILL), start-node, stop-node. */
export async function clusterNode(cmd: 'kill-node' | 'start-node' | 'stop-node', n: number): Promise<string> {
  const r = await run('bash', [CLUSTER_SH, cmd, String(n)], { timeout: 300_000 });
  return r.stdout + r.stderr;
}

export async function dropClusterKeyspace(keyspace: string): Promise<void> {
  const client = new cassandra.Client({ contactPoints: CLUSTER_HOSTS, localDataCenter: 'datacenter1' });
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { readTimeout: 60_000 });
  } finally {
    await client.shutdown();
  }
}
