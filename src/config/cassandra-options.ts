import { ConfigError } from '../errors.js';

/** Consistency levels accepted for reads and writes (ANY and the SERIAL levels are not: see docs/storage.md). */
export type CassandraConsistency =
  'LOCAL_QUORUM' | 'QUORUM' | 'EACH_QUORUM' | 'ALL' | 'LOCAL_ONE' | 'ONE' | 'TWO' | 'THREE';

/** Replication of the keyspace ec-server creates. */
export type Replication =
  | { class: 'SimpleStrategy'; replication_factor: number }
  | { class: 'NetworkTopologyStrategy'; dcs: Record<string, number> };

/** The `[CassandraDB]` section, converted and validated. */
export interface CassandraConfig {
  hosts: string[];
  port: number;
  keyspace: string;
  localDc: string;
  replication: Replication;
  /** Empty: no authentication. */
  username: string;
  password: string;
  consistency: CassandraConsistency;
  requestTimeoutMs: number;
  /** 0: rows never expire. */
  ttlDays: number;
  createSchema: boolean;
}

/** Unquoted CQL identifier rules for keyspaces (Cassandra allows at most 48 characters). */
const KEYSPACE_RE = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;
const DC_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_RF = 99;

/** What is wrong with `name` as a keyspace name in CQL text; undefined when it is fine. */
export function keyspaceProblem(name: string): string | undefined {
  return KEYSPACE_RE.test(name)
    ? undefined
    : 'must start with a letter and hold only letters, digits and _ (at most 48)';
}

/**
 * Accepts the CQL map (`{'class': 'SimpleStrategy', 'replication_factor': 1}`,
 * `{'class': 'NetworkTopologyStrategy', 'dc1': 3}`) or the short forms `SimpleStrategy:1` and
 * `NetworkTopologyStrategy:dc1=3,dc2=2`. The value ends up in CQL text, so everything is checked
 * and re-rendered from the parsed form (no text is passed through).
 */
export function parseReplication(text: string): Replication {
  const v = text.trim();
  const entries: [string, string][] = [];
  if (v.startsWith('{')) {
    if (!v.endsWith('}')) throw new Error('a CQL map must end with }');
    const inner = v.slice(1, -1).trim();
    if (inner === '') throw new Error('the map is empty');
    for (const part of inner.split(',')) {
      const m = /^\s*'([^']*)'\s*:\s*(?:'([^']*)'|(\d+))\s*$/.exec(part);
      if (!m)
        throw new Error(`cannot read map entry ${JSON.stringify(part.trim())}; expected 'key': 'value' or 'key': N`);
      entries.push([m[1]!, m[2] ?? m[3]!]);
    }
  } else {
    const m = /^([A-Za-z.]+)\s*:\s*(.+)$/.exec(v);
    if (!m) throw new Error('expected a CQL map, SimpleStrategy:N or NetworkTopologyStrategy:dc=N,...');
    entries.push(['class', m[1]!]);
    if (/^\d+$/.test(m[2]!.trim())) entries.push(['replication_factor', m[2]!.trim()]);
    else {
      for (const part of m[2]!.split(',')) {
        const kv = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
        if (!kv) throw new Error(`cannot read ${JSON.stringify(part.trim())}; expected dc=N`);
        entries.push([kv[1]!, kv[2]!]);
      }
    }
  }
  const map = new Map<string, string>();
  for (const [k, val] of entries) {
    if (map.has(k)) throw new Error(`${k} given twice`);
    map.set(k, val);
  }
  const cls = (map.get('class') ?? '').replace(/^org\.apache\.cassandra\.locator\./, '');
  map.delete('class');
  const factor = (key: string, s: string): number => {
    if (!/^\d+$/.test(s)) throw new Error(`${key} must be a whole number, not ${JSON.stringify(s)}`);
    const n = Number(s);
    if (n < 1 || n > MAX_RF) throw new Error(`${key} must be 1..${MAX_RF}`);
    return n;
  };
  if (cls === 'SimpleStrategy') {
    const rf = map.get('replication_factor');
    if (rf === undefined || map.size !== 1) throw new Error('SimpleStrategy takes exactly replication_factor');
    return { class: 'SimpleStrategy', replication_factor: factor('replication_factor', rf) };
  }
  if (cls === 'NetworkTopologyStrategy') {
    if (map.size === 0) throw new Error('NetworkTopologyStrategy needs at least one dc: factor');
    const dcs: Record<string, number> = {};
    for (const [dc, rf] of map) {
      if (!DC_RE.test(dc)) throw new Error(`bad data center name ${JSON.stringify(dc)}`);
      dcs[dc] = factor(dc, rf);
    }
    return { class: 'NetworkTopologyStrategy', dcs };
  }
  throw new Error(`class must be SimpleStrategy or NetworkTopologyStrategy, not ${JSON.stringify(cls)}`);
}

/** The CQL map literal of a parsed replication. */
export function replicationCql(r: Replication): string {
  if (r.class === 'SimpleStrategy') return `{'class': 'SimpleStrategy', 'replication_factor': ${r.replication_factor}}`;
  const dcs = Object.entries(r.dcs).map(([dc, n]) => `'${dc}': ${n}`);
  return `{'class': 'NetworkTopologyStrategy', ${dcs.join(', ')}}`;
}

/** Builds the cassandra part of Config from already type-checked raw values (see load-config.ts). */
export function buildCassandraConfig(
  str: (key: string) => string,
  int: (key: string) => number,
  originOf: (key: string) => string,
): CassandraConfig {
  const keyspace = str('cassandra.keyspace');
  const ksProblem = keyspaceProblem(keyspace);
  if (ksProblem)
    throw new ConfigError(
      originOf('cassandra.keyspace'),
      'cassandra.keyspace',
      `${JSON.stringify(keyspace)} ${ksProblem}`,
    );
  let replication: Replication;
  try {
    replication = parseReplication(str('cassandra.replication'));
  } catch (e) {
    throw new ConfigError(originOf('cassandra.replication'), 'cassandra.replication', (e as Error).message);
  }
  const username = str('cassandra.username');
  const password = str('cassandra.password');
  if (username === '' && password !== '') {
    throw new ConfigError(
      originOf('cassandra.password'),
      'cassandra.password',
      'is set but cassandra.username is empty',
    );
  }
  const hosts = str('cassandra.host')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (hosts.length === 0)
    throw new ConfigError(originOf('cassandra.host'), 'cassandra.host', 'must name at least one host');
  return {
    hosts,
    port: int('cassandra.port'),
    keyspace,
    localDc: str('cassandra.local_dc'),
    replication,
    username,
    password,
    consistency: str('cassandra.consistency') as CassandraConsistency,
    requestTimeoutMs: int('cassandra.request_timeout_ms'),
    ttlDays: int('cassandra.ttl_days'),
    createSchema: str('cassandra.create_schema') === 'true',
  };
}
