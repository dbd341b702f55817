import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ini from 'ini';
import type { DigestAlgorithm } from '../domain/device-credential.js';
import { ConfigError } from '../errors.js';
import { buildCassandraConfig, type CassandraConfig } from './cassandra-options.js';
import { CASSANDRA_ANSWER_MS, CONFIG_KEYS, KEY_INDEX, envName } from './config-keys.js';

export type Transport = 'udp' | 'tcp';

export interface Config {
  sip: {
    publicAddr: string;
    listenAddr: string;
    port: number;
    transports: Transport[];
    maxHeaderBytes: number;
    maxBodyBytes: number;
    tcpIdleTimeoutS: number;
    tcpMaxConnections: number;
    tcpMaxConnectionsPerSource: number;
    tcpRequestTimeoutS: number;
    tcpMaxUnsentBytes: number;
    transactionCacheSize: number;
    transactionCacheBytes: number;
    retryAfterS: number;
    /** Requests per second per source address; 0 = off. */
    rateLimit: number;
    rateLimitBurst: number;
    /** MESSAGEs per second per authenticated device; 0 = off. */
    deviceRateLimit: number;
    deviceRateLimitBurst: number;
    tlsPort: number;
  };
  tls: TlsConfig;
  storage: {
    backend: 'sqlite' | 'cassandra';
    path: string;
    commitMaxBatches: number;
    commitMaxBytes: number;
    maxQueuedBatches: number;
    maxQueuedBytes: number;
    sqliteSynchronous: 'FULL' | 'NORMAL';
    sqliteWriter: 'thread' | 'inline';
    sqliteCompression: 'deflate' | 'none';
    aggregates: boolean;
    /** Embedded store: days kept before today (UTC); 0 keeps everything. */
    retentionDays: number;
    sqliteCheckOnStart: boolean;
  };
  ingest: { maxFutureS: number; maxWaitMs: number; maxAnswerMs: number; maxLoopBusy: number };
  cassandra: CassandraConfig;
  sync: {
    freqMinutes: number;
    ip: string;
    port: number;
    enabled: boolean;
    graceS: number;
    deleteExtraneous: boolean;
    requestTimeoutS: number;
    concurrency: number;
    maxConnections: number;
    /** Resolved: 0 in the file means twice the period. */
    idleTimeoutS: number;
    maxPeriodsPerRound: number;
    leaseSeconds: number;
    unwatermarkedLagS: number;
    tls: boolean;
    tlsCertificate: string;
    tlsKey: string;
  };
  security: {
    requireAuth: boolean;
    allowAnonymous: boolean;
    realm: string;
    digestAlgorithms: DigestAlgorithm[];
    nonceLifetimeS: number;
    /** undefined: a random key at each start. */
    nonceKey: Buffer | undefined;
    credentialsRefreshS: number;
  };
  http: {
    enabled: boolean;
    listenAddr: string;
    port: number;
    /** Bearer tokens accepted on /metrics (as written: case matters). */
    tokens: string[];
    allowAnonymous: boolean;
  };
  devices: {
    offlineAfterS: number;
    flushS: number;
  };
  log: { level: string };
}

/** TLS file paths as configured (read when the server starts, see tls-options.ts). */
export interface TlsConfig {
  certificate: string;
  key: string;
  ca: string;
  clientCertificates: 'none' | 'request' | 'require';
  clientCa: string;
  handshakeTimeoutS: number;
  /** Where each tls.* and sync.tls* value came from: an error reading a file names it and its key. */
  origins: Record<string, string>;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, absolute; undefined when only built-in defaults were used. */
  file: string | undefined;
  /** Unknown keys and similar: worth a log line, not worth refusing to start. */
  warnings: string[];
}

export interface ConfigSources {
  /** --config PATH; when undefined, ./config/config.properties is read if it exists; null: no file. */
  configPath?: string | null;
  env?: NodeJS.ProcessEnv;
  /** key=value pairs from the command line (highest precedence). */
  overrides?: Record<string, string>;
}

export const DEFAULT_CONFIG_PATH = 'config/config.properties';

interface RawValue {
  value: string;
  origin: string;
}

/** Built-in defaults < config file < environment (EC_SIP_PORT...) < command-line flags. */
export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const warnings: string[] = [];
  const raw = new Map<string, RawValue>();
  for (const def of CONFIG_KEYS) raw.set(def.key, { value: def.default, origin: 'built-in default' });

  const file = pickConfigFile(sources.configPath);
  if (file) readConfigFile(file, raw, warnings);

  const env = sources.env ?? {};
  for (const def of CONFIG_KEYS) {
    const name = envName(def.key);
    const v = env[name];
    if (v !== undefined) raw.set(def.key, { value: v, origin: `environment variable ${name}` });
  }
  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    if (!KEY_INDEX.has(key)) throw new ConfigError('command line', key, 'unknown key');
    raw.set(key, { value, origin: 'command line' });
  }

  return { config: build(raw), file, warnings };
}

function pickConfigFile(configPath: string | null | undefined): string | undefined {
  if (configPath === null) return undefined;
  if (configPath !== undefined) return resolve(configPath);
  const fallback = resolve(DEFAULT_CONFIG_PATH);
  return existsSync(fallback) ? fallback : undefined;
}

function readConfigFile(file: string, raw: Map<string, RawValue>, warnings: string[]): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `config file ${file}`,
      undefined,
      `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  // The original files carry trailing comments on value lines (`sip.port=34567 # SIP port`);
  // `ini` strips those, and `;` or `#` at line start.
  const parsed = ini.parse(text) as Record<string, unknown>;
  const origin = `config file ${file}`;
  const take = (section: string | undefined, key: string, value: unknown): void => {
    const def = KEY_INDEX.get(key);
    if (!def) {
      warnings.push(`${origin}: unknown key ${key}${section ? ` in [${section}]` : ''} ignored`);
      return;
    }
    if (value !== null && typeof value === 'object') {
      throw new ConfigError(origin, key, 'must be a single value');
    }
    if (section !== undefined && section !== def.section) {
      warnings.push(`${origin}: key ${key} found in [${section}], expected in [${def.section}]`);
    }
    raw.set(key, {
      value:
        value === true
          ? 'true'
          : value === false
            ? 'false'
            : String((value as string | number | null | undefined) ?? ''),
      origin,
    });
  };
  for (const [name, value] of Object.entries(parsed)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) take(name, key, v);
    } else {
      take(undefined, name, value);
    }
  }
}

function build(raw: Map<string, RawValue>): Config {
  const str = (k: string): string => convert(k, raw) as string;
  const int = (k: string): number => convert(k, raw) as number;
  const list = (k: string): string[] => convert(k, raw) as string[];
  const publicAddr = str('sip.public_addr');
  return {
    sip: {
      publicAddr,
      listenAddr: str('sip.listen_addr') || publicAddr,
      port: int('sip.port'),
      transports: list('sip.transports') as Transport[],
      maxHeaderBytes: int('sip.max_header_bytes'),
      maxBodyBytes: int('sip.max_body_bytes'),
      tcpIdleTimeoutS: int('sip.tcp_idle_timeout'),
      tcpMaxConnections: int('sip.tcp_max_connections'),
      tcpMaxConnectionsPerSource: int('sip.tcp_max_connections_per_source'),
      tcpRequestTimeoutS: int('sip.tcp_request_timeout'),
      tcpMaxUnsentBytes: int('sip.tcp_max_unsent_bytes'),
      transactionCacheSize: int('sip.transaction_cache_size'),
      transactionCacheBytes: int('sip.transaction_cache_bytes'),
      retryAfterS: int('sip.retry_after'),
      rateLimit: int('sip.rate_limit'),
      rateLimitBurst: int('sip.rate_limit_burst'),
      deviceRateLimit: int('sip.device_rate_limit'),
      deviceRateLimitBurst: int('sip.device_rate_limit_burst'),
      tlsPort: int('sip.tls_port'),
    },
    tls: {
      certificate: str('tls.certificate'),
      key: str('tls.key'),
      ca: str('tls.ca'),
      clientCertificates: str('tls.client_certificates') as TlsConfig['clientCertificates'],
      clientCa: str('tls.client_ca'),
      handshakeTimeoutS: int('tls.handshake_timeout'),
      origins: Object.fromEntries(
        [...raw].filter(([k]) => k.startsWith('tls.') || k.startsWith('sync.tls')).map(([k, v]) => [k, v.origin]),
      ),
    },
    storage: {
      backend: str('storage.backend') as Config['storage']['backend'],
      path: str('storage.path'),
      commitMaxBatches: int('storage.commit_max_batches'),
      commitMaxBytes: int('storage.commit_max_bytes'),
      maxQueuedBatches: int('storage.max_queued_batches'),
      maxQueuedBytes: int('storage.max_queued_bytes'),
      sqliteSynchronous: str('storage.sqlite_synchronous') as Config['storage']['sqliteSynchronous'],
      sqliteWriter: str('storage.sqlite_writer') as Config['storage']['sqliteWriter'],
      sqliteCompression: str('storage.sqlite_compression') as Config['storage']['sqliteCompression'],
      aggregates: str('storage.aggregates') === 'true',
      retentionDays: int('storage.retention_days'),
      sqliteCheckOnStart: str('storage.sqlite_check_on_start') === 'true',
    },
    ingest: {
      maxFutureS: int('ingest.max_future_seconds'),
      maxWaitMs: int('ingest.max_wait_ms'),
      maxAnswerMs: answerDeadlineMs(convert('ingest.max_answer_ms', raw), str('storage.backend')),
      maxLoopBusy: int('ingest.max_loop_busy'),
    },
    cassandra: buildCassandraConfig(str, int, (k) => raw.get(k)!.origin),
    sync: {
      freqMinutes: int('sync.syncfreq'),
      ip: str('sync.ip'),
      port: int('sync.port'),
      enabled: str('sync.enabled') === 'true',
      graceS: int('sync.grace_seconds'),
      deleteExtraneous: str('sync.delete_extraneous') === 'true',
      requestTimeoutS: int('sync.request_timeout'),
      concurrency: int('sync.concurrency'),
      maxConnections: int('sync.max_connections'),
      idleTimeoutS: int('sync.idle_timeout') || 2 * 60 * int('sync.syncfreq'),
      maxPeriodsPerRound: int('sync.max_periods_per_round'),
      leaseSeconds: int('sync.lease_seconds'),
      unwatermarkedLagS: int('sync.unwatermarked_lag'),
      tls: str('sync.tls') === 'true',
      tlsCertificate: str('sync.tls_certificate'),
      tlsKey: str('sync.tls_key'),
    },
    security: {
      requireAuth: str('security.require_auth') === 'true',
      allowAnonymous: str('security.allow_anonymous') === 'true',
      realm: str('security.realm'),
      digestAlgorithms: list('security.digest_algorithms').map((a) => a.toUpperCase() as DigestAlgorithm),
      nonceLifetimeS: int('security.nonce_lifetime'),
      nonceKey: hexKey('security.nonce_key', str('security.nonce_key'), raw),
      credentialsRefreshS: int('security.credentials_refresh'),
    },
    http: {
      enabled: str('http.enabled') === 'true',
      listenAddr: str('http.listen_addr'),
      port: int('http.port'),
      tokens: tokenList('http.tokens', str('http.tokens'), raw),
      allowAnonymous: str('http.allow_anonymous') === 'true',
    },
    devices: {
      offlineAfterS: int('devices.offline_after'),
      flushS: int('devices.flush_seconds'),
    },
    log: { level: str('log.level') },
  };
}

/** A comma list of secrets, kept as written (the `list` kind lowercases); each long enough to resist guessing. */
function tokenList(key: string, value: string, raw: Map<string, RawValue>): string[] {
  const tokens = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (tokens.some((t) => t.length < 16 || /\s/.test(t))) {
    throw new ConfigError(raw.get(key)!.origin, key, 'each token must be 16 or more characters without spaces');
  }
  return [...new Set(tokens)];
}

function hexKey(key: string, value: string, raw: Map<string, RawValue>): Buffer | undefined {
  if (value === '') return undefined;
  if (!/^(?:[0-9a-fA-F]{2}){16,}$/.test(value)) {
    throw new ConfigError(raw.get(key)!.origin, key, 'must be an even number of hex digits, at least 32');
  }
  return Buffer.from(value, 'hex');
}

/** ingest.max_answer_ms: `auto` is CASSANDRA_ANSWER_MS on Cassandra, off (0) on the embedded store. */
function answerDeadlineMs(value: string | number | string[], backend: string): number {
  if (value === 'auto') return backend === 'cassandra' ? CASSANDRA_ANSWER_MS : 0;
  return value as number;
}

function convert(key: string, raw: Map<string, RawValue>): string | number | string[] {
  const def = KEY_INDEX.get(key)!;
  const { value, origin } = raw.get(key)!;
  const v = value.trim();
  const fail = (problem: string): never => {
    throw new ConfigError(origin, key, `${JSON.stringify(value)} ${problem}`);
  };
  switch (def.kind.type) {
    case 'string':
      if (def.kind.nonEmpty && v === '') fail('must not be empty');
      return v;
    case 'int': {
      const word = def.kind.words?.find((w) => w === v.toLowerCase());
      if (word !== undefined) return word;
      if (!/^-?\d+$/.test(v))
        fail(def.kind.words ? `is not an integer or ${def.kind.words.join(', ')}` : 'is not an integer');
      const n = Number(v);
      if (n < def.kind.min || n > def.kind.max) fail(`is out of range ${def.kind.min}..${def.kind.max}`);
      return n;
    }
    case 'enum': {
      const match = def.kind.values.find((x) => x.toLowerCase() === v.toLowerCase());
      if (match === undefined) fail(`is not one of ${def.kind.values.join(', ')}`);
      return match!;
    }
    case 'list': {
      const items = v
        .split(',')
        .map((x) => x.trim().toLowerCase())
        .filter(Boolean);
      if (items.length === 0) fail('must name at least one item');
      const allowed = def.kind.values;
      const bad = allowed ? items.find((x) => !allowed.includes(x)) : undefined;
      if (bad !== undefined) fail(`names ${bad}; allowed: ${allowed!.join(', ')}`);
      return [...new Set(items)];
    }
  }
}
