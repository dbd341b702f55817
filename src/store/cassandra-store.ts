import cassandra from 'cassandra-driver';
import { keyspaceProblem, replicationCql, type CassandraConfig } from '../config/cassandra-options.js';
import { newCredentialsVersion, type DeviceCredential } from '../domain/device-credential.js';
import type { DeviceRecord } from '../domain/device-record.js';
import { batchEpochSecond, batchKeyString, type Batch, type BatchKey, type BatchSummary } from '../domain/batch.js';
import { summarizeIntervals } from '../domain/interval-digest.js';
import { batchAggregate, valueStats, type BatchAggregate, type Bucket } from '../domain/sample-stats.js';
import {
  bucketOfRow,
  FINAL_STATUSES,
  minuteBounds,
  minuteRollups,
  rollupRow,
  type RollupRow,
} from './minute-rollups.js';
import { StoreUnavailableError } from '../errors.js';
import { mapLimit } from '../util/work-slots.js';
import type {
  BatchReplacement,
  ConsumptionStore,
  DeviceRange,
  IntervalCheck,
  IntervalSummary,
  CheckStatus,
} from './consumption-store.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import { daySlices, type DaySlice } from './day-slices.js';
import type { DeviceLeases } from './device-leases.js';
import { isLateWrite, reopenedCheckKeys } from './sync-period-keys.js';

/** What the schema text depends on. */
export type CassandraSchemaOptions = Pick<CassandraConfig, 'keyspace' | 'replication' | 'ttlDays'>;

/**
 * Writes in flight to the cluster, all groups together (src/store/adaptive-limit.ts): starts at 64,
 * adapts between 64 and 1,024 so that a write comes back within WRITE_TARGET_MS on average, or within
 * twice what it takes at 64 in flight when the cluster is slower than that. Never fewer than 64: with a
 * node down the old minimum of 16 held the store at 16 / latency (~100-230 writes/s here) while 64 in
 * flight took 2-3 times that at the same moment, each write no slower (docs/scaling.md, Node failure); a
 * single node limited to ~530 inserts/s answers 64 in ~120 ms, under ingest.max_wait_ms.
 */
export const WRITE_LIMIT = { initial: 64, min: 64, max: 1024 } as const;
/**
 * Small live rows of one replica set go in one unlogged batch (writeUnits): at most this many rows, so
 * that the node does not warn of a batch over many partitions (unlogged_batch_across_partitions_warn_threshold, 10)...
 */
export const UNLOGGED_BATCH_ROWS = 10;
/** ...and about this many bytes (rowBytes), under the node's batch_size_warn_threshold (5 KiB). */
export const UNLOGGED_BATCH_BYTES = 4800;
/** A fifth of ingest.max_wait_ms's default (250 ms): a write may queue in the node, not for long. */
export const WRITE_TARGET_MS = 50;
/** Hour partitions read concurrently by one range read (a day-long read touches up to 25). */
const READ_CONCURRENCY = 4;
/** Rows per page. A full row carries ~16 KB of values at 1000 samples/s: 500 rows stay near 8 MB a page. */
const FETCH_BATCHES = 500;
const FETCH_SUMMARIES = 5000;
/** Replacements kept in memory for readReplacements (the server's watch reads them within seconds). */
const REPLACEMENTS_KEPT = 10_000;
/** Reconnection to a node marked down: 250 ms, 500 ms, 1 s, 2 s, then every 4 s. */
const RECONNECT_BASE_MS = 250;
const RECONNECT_MAX_MS = 4000;

const CONSUMPTION_COLUMNS = [
  'device_id',
  'ec_date',
  'ec_hour',
  'ec_time',
  'start_us',
  'end_us',
  'ec_consumption_values',
  'values_count',
  'values_checksum',
  'batch_seq',
  'insert_time',
  'values_sum',
  'values_min',
  'values_max',
  'values_max_us',
] as const;
/** Per-batch aggregates (domain/sample-stats.ts), added to tables from before them by open() or upgrade-store. */
const AGGREGATE_COLUMNS = { values_sum: 'double', values_min: 'double', values_max: 'double', values_max_us: 'int' };
const SUMMARY_COLUMNS =
  'device_id, ec_date, ec_time, start_us, end_us, values_count, values_checksum, batch_seq, insert_time';
const CHECK_COLUMNS =
  'device_id, ec_date, ec_time, interval_seconds, values_count, values_checksum, check_time, check_times, status';

/**
 * The schema, as CQL statements (each without the trailing `;`). ec_consumption is partitioned by
 * (device, UTC day, UTC hour): at 1000 samples/s a device writes ~58 MB of values an hour, so an
 * hour partition stays under the ~100 MB guideline where a device-only or day partition would not
 * (docs/storage.md has the arithmetic). The table default TTL is only a fallback for other writers:
 * ec-server binds the configured TTL on every write.
 */
export function cassandraSchemaStatements(o: CassandraSchemaOptions): string[] {
  const problem = keyspaceProblem(o.keyspace);
  if (problem) throw new RangeError(`keyspace ${JSON.stringify(o.keyspace)} ${problem}`);
  const ks = o.keyspace;
  const ttl = ttlSeconds(o.ttlDays);
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${ks}
  WITH replication = ${replicationCql(o.replication)}
  AND durable_writes = true`,
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_consumption (
  device_id             text,
  ec_date               text,      -- YYYYMMDD, UTC
  ec_hour               text,      -- hh, UTC: the hour bucket (= first two digits of ec_time)
  ec_time               text,      -- hhmmss, UTC
  start_us              text,      -- first record's microsecond offset, 6 digits
  end_us                text,      -- last record's microsecond offset, 6 digits
  ec_consumption_values text,      -- the records as sent: us,value;us,value...
  values_count          int,
  values_checksum       text,      -- lowercase hex MD5 (docs/protocol.md)
  batch_seq             bigint,    -- X-EC-Seq, when the client sent one
  insert_time           timestamp,
  values_sum            double,    -- the records' sum, min, max and the max's us offset (storage.aggregates)
  values_min            double,
  values_max            double,
  values_max_us         int,
  PRIMARY KEY ((device_id, ec_date, ec_hour), ec_time, start_us, end_us)
) WITH CLUSTERING ORDER BY (ec_time ASC, start_us ASC, end_us ASC)
  AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', ` +
      `'compaction_window_size': 1}
  AND default_time_to_live = ${ttl}
  AND comment = 'ec-server consumption batches, one partition per device and UTC hour'`,
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_checksum (
  device_id        text,
  ec_date          text,           -- YYYYMMDD, UTC
  ec_time          text,           -- hhmmss the interval starts at
  interval_seconds int,
  values_count     int,
  values_checksum  text,
  check_time       timestamp,
  check_times      int,
  status           text,           -- pending | verified | repaired | mismatch-unresolved
  reopened         boolean,        -- written by a later write into the interval: pending while newer than status
  PRIMARY KEY ((device_id, ec_date), ec_time, interval_seconds)
) WITH CLUSTERING ORDER BY (ec_time ASC, interval_seconds ASC)
  AND default_time_to_live = ${ttl}
  AND comment = 'ec-server sync check results, one partition per device and UTC day'`,
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_rollup_minute (
  device_id   text,
  ec_date     text,              -- YYYYMMDD, UTC
  ec_minute   text,              -- hhmm, UTC
  samples     bigint,
  values_sum  double,
  values_min  double,            -- unset in an empty minute
  values_max  double,
  max_at      double,            -- epoch ms of the first sample holding values_max
  seconds     int,               -- seconds of the minute holding data
  PRIMARY KEY ((device_id, ec_date), ec_minute)
) WITH CLUSTERING ORDER BY (ec_minute ASC)
  AND default_time_to_live = ${ttl}
  AND comment = 'ec-server minute rollups of verified periods, one partition per device and UTC day (<= 1,440 rows)'`,
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_device_credential (
  device_id   text PRIMARY KEY,
  realm       text,
  ha1_md5     text,              -- MD5(device:realm:secret), hex; never the secret itself
  ha1_sha256  text,              -- SHA-256(device:realm:secret), hex
  created_ms  bigint,
  updated_ms  bigint
) WITH comment = 'ec-server device credentials (digest HA1 values), one partition per device'`,
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_meta (
  name   text PRIMARY KEY,        -- 'credentials_version': changed with every credential change
  value  text
) WITH comment = 'ec-server small shared values, one partition per name'`,
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_device (
  device_id      text PRIMARY KEY,
  first_seen_ms  bigint,
  last_seen_ms   bigint,
  last_seq       bigint,
  day            text,             -- YYYYMMDD, UTC: the day batches_today and samples_today count
  batches_today  bigint,
  samples_today  bigint
) WITH comment = 'ec-server device registry, one partition per device'`,
    // Written only with lightweight transactions (CassandraLeases); a lease lives LEASE_TTL at most, so
    // its tombstones need not outlive an hour.
    `CREATE TABLE IF NOT EXISTS ${ks}.ec_sync_lease (
  name      text PRIMARY KEY,      -- what is leased: a device id (the sync service reconciling it)
  owner     text,                  -- the receiver holding it (host, pid, random)
  taken_ms  bigint
) WITH gc_grace_seconds = 3600
  AND comment = 'ec-server sync leases: one receiver reconciles a device at a time; rows expire by TTL'`,
  ];
}

/** The schema as one CQL script (for `ec-server schema | cqlsh`). */
export function cassandraSchemaCql(o: CassandraSchemaOptions): string {
  return (
    `-- ec-server schema for keyspace ${o.keyspace} ` +
    `(docs/storage.md)\n\n${cassandraSchemaStatements(o).join(';\n\n')};\n`
  );
}

function ttlSeconds(days: number): number {
  return Math.round(days) * 86_400;
}

/** One hour partition's part of a day slice: [fromTime, toTime) on ec_time within ec_hour. */
export interface HourSlice {
  ec_date: string;
  ec_hour: string;
  fromTime: string;
  toTime: string;
}

/** Splits a range into the hour partitions it touches, in key order (daySlices, then per hour). */
export function hourSlices(range: DeviceRange): HourSlice[] {
  return daySlices(range).flatMap(splitDay);
}

function splitDay(s: DaySlice): HourSlice[] {
  if (s.fromTime >= s.toTime) return [];
  const first = Number(s.fromTime.slice(0, 2));
  // toTime is exclusive: '150000' ends inside hour 14; '240000' ends with hour 23.
  const last = s.toTime.endsWith('0000') ? Number(s.toTime.slice(0, 2)) - 1 : Number(s.toTime.slice(0, 2));
  const out: HourSlice[] = [];
  for (let h = first; h <= last; h++) {
    const hh = String(h).padStart(2, '0');
    const lo = h === first ? s.fromTime : `${hh}0000`;
    const hi = h === last ? s.toTime : `${String(h + 1).padStart(2, '0')}0000`;
    if (lo < hi) out.push({ ec_date: s.ec_date, ec_hour: hh, fromTime: lo, toTime: hi });
  }
  return out;
}

/**
 * Retries a server-side write timeout of an idempotent statement once on the same coordinator (the
 * driver's default gives up at once). Everything else is the driver's default: an unavailable
 * answer is tried once on the next host, client timeouts and connection errors of idempotent
 * statements move on to the next host. All of our statements are idempotent.
 */
class IdempotentWriteRetryPolicy extends cassandra.policies.retry.RetryPolicy {
  override onWriteTimeout(
    info: cassandra.policies.retry.OperationInfo,
    consistency: cassandra.types.consistencies,
  ): cassandra.policies.retry.DecisionInfo {
    // Retried at the statement's own consistency (undefined keeps it; the typings do not say so). For a
    // lightweight transaction (ec_sync_lease) the level reported here is the serial one, which Cassandra
    // refuses as the commit consistency of the retry.
    void consistency;
    const own = undefined as unknown as cassandra.types.consistencies;
    return info.nbRetry > 0 ? this.rethrowResult() : this.retryResult(own, true);
  }
}

type Row = cassandra.types.Row;

/**
 * Apache Cassandra backend. One long-lived driver Client (token-aware, DC-aware); every statement
 * is prepared, idempotent (plain INSERT/DELETE, no lightweight transactions) and names its
 * partition; no ALLOW FILTERING. Any driver failure surfaces as StoreUnavailableError, so the SIP
 * side answers 503 with Retry-After; the driver reconnects by itself when nodes come back.
 */
export class CassandraStore implements ConsumptionStore {
  readonly backend = 'cassandra';
  /**
   * Group commit hands over each group at once (up to 8 at a time): the groups' writes share one
   * adaptive limit, so the node is kept busy while a group waits for its slowest write. Writes of
   * the same key apply in group order, in one group or two: each row's client-side timestamp is taken
   * when its group is handed over (writeUnits), not when the driver gets to the request (the first uses
   * of a statement wait for its preparation, and then two writes of one key were sent in either order).
   */
  readonly pipelined = true;
  /** Writes in flight, adapted to the cluster's latency. */
  readonly writeLimit = new AdaptiveLimit({ ...WRITE_LIMIT, targetMs: WRITE_TARGET_MS });
  /** Write timestamps taken in group order (stamp); the client's own generator too (open). */
  private readonly timestamps = new cassandra.policies.timestampGeneration.MonotonicTimestampGenerator(1000, 1000);
  /** Rows sent, the requests that carried them, the unlogged batches among those (failed ones too): logged at stop. */
  readonly writeCounts = { rows: 0, requests: 0, batches: 0 };
  /** Sync leases: a row per device, lightweight transactions, TTL (see CassandraLeases). */
  readonly leases: DeviceLeases;
  private client: cassandra.Client | undefined;
  private readonly consistency: number;
  private readonly ttl: number;
  /** Hard limit on one statement, retries included: a lost callback must never hang a request. */
  private readonly deadlineMs: number;
  private readonly q: ReturnType<typeof cassandraStatements>;

  /** Replaced batches seen by this process's late writes (readReplacements), the newest REPLACEMENTS_KEPT. */
  private readonly replacements: BatchReplacement[] = [];
  private replacementSeq = 0;
  private readonly aggregates: boolean;

  constructor(
    private readonly options: CassandraConfig,
    /** The sync period (sync.syncfreq, seconds): late writes re-open recorded periods. Unset: they do not. */
    private readonly syncPeriodS?: number,
    /** storage.aggregates (default true): each batch's count/sum/min/max written with its row. */
    extra: { aggregates?: boolean } = {},
  ) {
    this.aggregates = extra.aggregates ?? true;
    const problem = keyspaceProblem(options.keyspace);
    if (problem) throw new RangeError(`keyspace ${JSON.stringify(options.keyspace)} ${problem}`);
    this.consistency = consistencyCode(options.consistency);
    this.ttl = ttlSeconds(options.ttlDays);
    this.deadlineMs = 2 * options.requestTimeoutMs + 1000;
    this.q = cassandraStatements(options.keyspace);
    this.leases = new CassandraLeases(options.keyspace, (cql, params, what) =>
      this.run(cql, params, what, { serialConsistency: cassandra.types.consistencies.localSerial }),
    );
  }

  get keyspace(): string {
    return this.options.keyspace;
  }

  async open(): Promise<void> {
    if (this.client) return;
    const o = this.options;
    const client = new cassandra.Client({
      contactPoints: o.hosts,
      localDataCenter: o.localDc,
      protocolOptions: { port: o.port },
      ...(o.username !== '' ? { authProvider: new cassandra.auth.PlainTextAuthProvider(o.username, o.password) } : {}),
      socketOptions: { connectTimeout: o.requestTimeoutMs, readTimeout: o.requestTimeoutMs },
      policies: {
        reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(
          RECONNECT_BASE_MS,
          RECONNECT_MAX_MS,
          false,
        ),
        retry: new IdempotentWriteRetryPolicy(),
        // The generator writeUnits stamps rows with, so that every statement of this client (a sync
        // repair's delete, then its insert) draws from one monotonic sequence: two generators each count
        // microseconds within a millisecond from 0, and an insert could then be stamped under the delete
        // before it and stay hidden by its tombstone.
        timestampGeneration: this.timestamps,
      },
      queryOptions: { consistency: this.consistency, prepare: true, isIdempotent: true },
      pooling: { heartBeatInterval: 10_000 },
    });
    client.on('hostRemove', closeRemovedHostPool);
    let added: string[] = [];
    try {
      await withDeadline(client.connect(), o.requestTimeoutMs * 2 + 5000, 'connect');
      if (o.createSchema) {
        for (const cql of cassandraSchemaStatements(o)) {
          await client.execute(cql, [], { prepare: false, readTimeout: Math.max(o.requestTimeoutMs, 20_000) });
        }
        added = await addAggregateColumns(client, o.keyspace, o.requestTimeoutMs);
      }
      await this.checkSchema(client, added);
      await this.addReopenedColumn(client);
    } catch (e) {
      await client.shutdown().catch(() => undefined);
      throw unavailable(e, `cannot open Cassandra store (${o.hosts.join(',')}:${o.port}, keyspace ${o.keyspace})`);
    }
    this.client = client;
  }

  /**
   * Keyspaces created before sync periods could be re-opened lack ec_checksum.reopened: added when the
   * store may create schema, otherwise the operator is told the statement to run.
   */
  private async addReopenedColumn(client: cassandra.Client): Promise<void> {
    const ks = this.options.keyspace;
    const t = await client.metadata.getTable(ks, 'ec_checksum');
    if (!t || t.columnsByName.reopened) return;
    const cql = `ALTER TABLE ${ks}.ec_checksum ADD reopened boolean`;
    if (!this.options.createSchema) {
      throw new StoreUnavailableError(`table ${ks}.ec_checksum lacks the column reopened: run \`${cql}\``);
    }
    await client.execute(cql, [], { prepare: false, readTimeout: Math.max(this.options.requestTimeoutMs, 20_000) });
  }

  /** Refuses tables of another layout (e.g. the original device-only partitioning) before any write. */
  private async checkSchema(client: cassandra.Client, justAdded: readonly string[]): Promise<void> {
    const ks = this.options.keyspace;
    const hint = this.options.createSchema
      ? ''
      : ' (cassandra.create_schema=false: create it with `ec-server schema | cqlsh`)';
    const expect = {
      ec_consumption: ['device_id', 'ec_date', 'ec_hour'],
      ec_checksum: ['device_id', 'ec_date'],
      ec_device_credential: ['device_id'],
      ec_rollup_minute: ['device_id', 'ec_date'],
      ec_sync_lease: ['name'],
      ec_meta: ['name'],
    } as const;
    for (const [name, partitionKey] of Object.entries(expect)) {
      const t = await client.metadata.getTable(ks, name);
      if (!t) throw new StoreUnavailableError(`table ${ks}.${name} does not exist${hint}`);
      const got = t.partitionKeys.map((c) => c.name);
      // Columns added a moment ago may not show in the driver's cached metadata yet.
      const missing = Object.keys(AGGREGATE_COLUMNS).filter(
        (c) => !justAdded.includes(c) && !t.columns.some((k) => k.name === c),
      );
      if (name === 'ec_consumption' && missing.length > 0) {
        throw new StoreUnavailableError(
          `table ${ks}.ec_consumption lacks ${missing.join(', ')}: run \`ec-server upgrade-store\` (docs/storage.md)`,
        );
      }
      if (got.join(',') !== partitionKey.join(',')) {
        throw new StoreUnavailableError(
          `table ${ks}.${name} is partitioned by (${got.join(', ')}), expected (${partitionKey.join(', ')}); ` +
            `see docs/storage.md`,
        );
      }
    }
  }

  private get handle(): cassandra.Client {
    if (!this.client) throw new StoreUnavailableError('Cassandra store is not open');
    return this.client;
  }

  private async run(
    cql: string,
    params: unknown[],
    what: string,
    extra: cassandra.QueryOptions = {},
  ): Promise<cassandra.types.ResultSet> {
    const client = this.handle;
    try {
      return await withDeadline(
        client.execute(cql, params as cassandra.ArrayOrObject, {
          prepare: true,
          isIdempotent: true,
          consistency: this.consistency,
          ...extra,
        }),
        this.deadlineMs,
        what,
      );
    } catch (e) {
      throw unavailable(e, `Cassandra ${what} failed`);
    }
  }

  /** All rows of one statement, page by page. */
  private async all(cql: string, params: unknown[], fetchSize: number, what: string): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.run(cql, params, what, { fetchSize, ...(pageState ? { pageState } : {}) });
      rows.push(...rs.rows);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  /**
   * Resolves once every batch is acknowledged. After the first failure no write of this group
   * starts; it rejects with that failure once the ones in flight have settled.
   */
  async upsertBatches(batches: readonly Batch[]): Promise<void> {
    void this.handle; // throws when the store is not open
    let failure: { error: unknown } | undefined;
    await Promise.all(
      this.writeUnits(batches).map((write) =>
        this.writeLimit
          .run(() => (failure ? Promise.resolve() : write()))
          .catch((e: unknown) => {
            failure ??= { error: e };
          }),
      ),
    );
    if (failure) throw failure.error;
  }

  /**
   * The requests that write a group: a late write (upsertLate) or a large row alone; small live rows whose
   * partitions have the same replicas together in unlogged batches of up to UNLOGGED_BATCH_ROWS rows.
   *
   * Why: a node spends about as much CPU on a request as on the row it carries when rows are small, and
   * the less so the more requests it has queued. Meters arrive spread out in time, so the writer holds
   * far fewer writes in flight than a closed-loop client that saturates the node, and each one costs the
   * node about twice the CPU (docs/performance.md). Rows of one replica set in one request are what
   * DataStax's bulk loader does: the coordinator is a replica of every row, so the batch adds no hop.
   * A batch is not atomic here and need not be: every row is an idempotent upsert, and the group's
   * batches are acknowledged together, once all of its requests have succeeded.
   */
  private writeUnits(batches: readonly Batch[]): (() => Promise<unknown>)[] {
    const P = this.syncPeriodS;
    const nowS = Date.now() / 1000;
    const lateIn = (b: Batch): number | undefined => (P !== undefined && isLateWrite(b, P, nowS) ? P : undefined);
    /** One row alone, stamped now: a late write reads and re-opens (upsertLate), a live one is the insert. */
    const alone = (b: Batch, lateP: number | undefined): (() => Promise<unknown>) => {
      const ts = this.stamp();
      return lateP === undefined ? () => this.upsertOne(b, ts) : () => this.upsertLate(b, lateP, ts);
    };
    // Two writes of one key in a group (a meter's resend beside its journal's replay): one statement each,
    // in group order, as before batches. In one batch both would carry the batch's timestamp and the node
    // would merge them cell by cell (a count of one with the checksum of the other).
    if (hasRepeatedKey(batches)) return batches.map((b) => alone(b, lateIn(b)));
    const units: (() => Promise<unknown>)[] = [];
    const open = new Map<string, { rows: Batch[]; bytes: number }>();
    const flush = (rows: Batch[]) => {
      if (rows.length === 1) return units.push(alone(rows[0]!, undefined));
      const ts = this.stamp();
      return units.push(() => this.upsertUnlogged(rows, ts));
    };
    for (const b of batches) {
      const lateP = lateIn(b);
      const bytes = rowBytes(b);
      const key = lateP === undefined && bytes <= UNLOGGED_BATCH_BYTES / 2 && this.replicasOf(b);
      if (!key) {
        units.push(alone(b, lateP));
        continue;
      }
      let chunk = open.get(key);
      if (chunk && (chunk.rows.length >= UNLOGGED_BATCH_ROWS || chunk.bytes + bytes > UNLOGGED_BATCH_BYTES)) {
        flush(chunk.rows);
        chunk = undefined;
      }
      if (!chunk) open.set(key, (chunk = { rows: [], bytes: 0 }));
      chunk.rows.push(b);
      chunk.bytes += bytes;
    }
    for (const chunk of open.values()) flush(chunk.rows);
    return units;
  }

  /** The replica set of the row's partition, as a key ('' while the driver has no token map: the row goes alone). */
  private replicasOf(b: Batch): string {
    const hosts = this.handle.getReplicas(this.options.keyspace, partitionRoutingKey(b));
    return hosts
      ? hosts
          .map((h) => h.address)
          .sort()
          .join(',')
      : '';
  }

  /** A client-side write timestamp, now (microseconds, monotonic: never the same twice). */
  private stamp(): WriteTime {
    return this.timestamps.next(this.handle) ?? undefined;
  }

  private upsertOne(b: Batch, timestamp: WriteTime): Promise<unknown> {
    this.writeCounts.requests++;
    this.writeCounts.rows++;
    const at = timestamp === undefined ? {} : { timestamp };
    return this.run(this.q.upsert, cassandraUpsertParams(b, this.ttl, this.aggregates), 'write', at);
  }

  private async upsertUnlogged(rows: Batch[], timestamp: WriteTime): Promise<void> {
    this.writeCounts.requests++;
    this.writeCounts.batches++;
    this.writeCounts.rows += rows.length;
    const queries = rows.map((b) => ({
      query: this.q.upsert,
      params: cassandraUpsertParams(b, this.ttl, this.aggregates),
    }));
    try {
      await withDeadline(
        this.handle.batch(queries, {
          prepare: true,
          logged: false,
          isIdempotent: true,
          consistency: this.consistency,
          ...(timestamp === undefined ? {} : { timestamp }),
        }),
        this.deadlineMs,
        'write',
      );
    } catch (e) {
      throw unavailable(e, 'Cassandra write failed');
    }
  }

  /**
   * A write into a period a sync round may have recorded: the stored row is read first (one read, only
   * for such writes), so that a retransmission re-opens nothing and a replacement with other values is
   * noted. The re-open marks are written after the row: a round that reads the row after our mark was
   * overwritten by its record sees the new values (the reconciler reads its digest again after a record).
   */
  private async upsertLate(b: Batch, periodS: number, ts: WriteTime): Promise<void> {
    const key = [b.device_id, b.ec_date, b.ec_time.slice(0, 2), b.ec_time, b.start_us, b.end_us];
    const old = (await this.run(this.q.stored, key, 'read')).rows[0];
    const oldCount = old ? Number(old.get('values_count')) : undefined;
    const oldChecksum = old ? String(old.get('values_checksum')) : undefined;
    await this.upsertOne(b, ts);
    if (oldCount === b.values_count && oldChecksum === b.values_checksum) return;
    if (old) {
      this.replacements.push({
        id: ++this.replacementSeq,
        device_id: b.device_id,
        ec_date: b.ec_date,
        ec_time: b.ec_time,
        start_us: b.start_us,
        end_us: b.end_us,
        old_count: oldCount!,
        old_checksum: oldChecksum!,
        new_count: b.values_count,
        new_checksum: b.values_checksum,
        replaced_ms: Date.now(),
      });
      if (this.replacements.length > REPLACEMENTS_KEPT) this.replacements.shift();
    }
    await Promise.all(
      reopenedCheckKeys(b, periodS).map((k) => this.run(this.q.reopenCheck, [this.ttl, ...k], 'write')),
    );
  }

  async readReplacements(after: number, limit: number): Promise<BatchReplacement[]> {
    return this.replacements.filter((r) => r.id > after).slice(0, limit);
  }

  async readBatches(range: DeviceRange): Promise<Batch[]> {
    return this.readHours(range, this.q.readBatches, FETCH_BATCHES, (r) => ({
      ...toSummary(r),
      ec_consumption_values: String(r.get('ec_consumption_values')),
    }));
  }

  /** From the aggregate columns; an hour holding a row without them (older, or aggregates off) is read whole. */
  async readBatchAggregates(range: DeviceRange): Promise<BatchAggregate[]> {
    const parts = await mapLimit(hourSlices(range), READ_CONCURRENCY, async (s) => {
      const key = [range.device_id, s.ec_date, s.ec_hour, s.fromTime, s.toTime];
      const rows = await this.all(this.q.readAggregates, key, FETCH_SUMMARIES, 'read');
      if (rows.every((r) => r.get('values_sum') !== null)) return rows.map(toAggregate);
      const full = await this.all(this.q.readBatches, key, FETCH_BATCHES, 'read');
      return full.map((r) =>
        batchAggregate({ ...toSummary(r), ec_consumption_values: String(r.get('ec_consumption_values')) }),
      );
    });
    return parts.flat();
  }

  async readSummaries(range: DeviceRange): Promise<BatchSummary[]> {
    return this.readHours(range, this.q.readSummaries, FETCH_SUMMARIES, toSummary);
  }

  private async readHours<T>(range: DeviceRange, cql: string, fetchSize: number, map: (r: Row) => T): Promise<T[]> {
    void this.handle; // throws when the store is not open
    const slices = hourSlices(range);
    const parts = await mapLimit(slices, READ_CONCURRENCY, (s) =>
      this.all(cql, [range.device_id, s.ec_date, s.ec_hour, s.fromTime, s.toTime], fetchSize, 'read'),
    );
    return parts.flat().map(map);
  }

  async intervalSummaries(range: DeviceRange, intervalSeconds: number): Promise<IntervalSummary[]> {
    return summarizeIntervals(await this.readSummaries(range), intervalSeconds);
  }

  /**
   * Cassandra's DELETE does not say whether the row existed, and IF EXISTS would mix lightweight
   * transactions into a table written without them; so: read the key, then delete it.
   */
  async deleteBatch(k: BatchKey): Promise<boolean> {
    const key = [k.device_id, k.ec_date, k.ec_time.slice(0, 2), k.ec_time, k.start_us, k.end_us];
    const found = await this.run(this.q.exists, key, 'read');
    if (found.rows.length === 0) return false;
    await this.run(this.q.deleteBatch, key, 'delete');
    return true;
  }

  /** A verified or repaired period's minute rollups are written first: a failure in between leaves them unused. */
  async writeIntervalCheck(c: IntervalCheck): Promise<void> {
    if (FINAL_STATUSES.has(c.status)) {
      const from = batchEpochSecond(c);
      await this.finaliseRollups({ device_id: c.device_id, from, to: from + c.interval_seconds });
    }
    await this.run(
      this.q.writeCheck,
      [
        c.device_id,
        c.ec_date,
        c.ec_time,
        c.interval_seconds,
        c.values_count,
        c.values_checksum,
        new Date(c.check_time),
        c.check_times,
        c.status,
        this.ttl,
      ],
      'write',
    );
  }

  async finaliseRollups(range: DeviceRange): Promise<number> {
    const rollups = minuteRollups(await this.readBatchAggregates(range), range.from, range.to);
    await mapLimit(rollups, READ_CONCURRENCY * 4, (b) => {
      const r = rollupRow(b);
      // unset rather than null: a null writes a tombstone
      const opt = (v: number | null) => v ?? undefined;
      const key: unknown[] = [range.device_id, r.ec_date, r.ec_minute, cassandra.types.Long.fromNumber(r.samples)];
      const params = [...key, r.values_sum, opt(r.values_min), opt(r.values_max), opt(r.max_at), r.seconds, this.ttl];
      return this.run(this.q.upsertRollup, params, 'write');
    });
    return rollups.length;
  }

  async readMinuteRollups(range: DeviceRange): Promise<Bucket[]> {
    void this.handle; // throws when the store is not open
    const parts = await mapLimit(daySlices(range), READ_CONCURRENCY, (s) => {
      const { lo, hi } = minuteBounds(s);
      return this.all(this.q.readRollups, [range.device_id, s.ec_date, lo, hi], FETCH_SUMMARIES, 'read');
    });
    return parts.flat().map((r) =>
      bucketOfRow({
        ec_date: String(r.get('ec_date')),
        ec_minute: String(r.get('ec_minute')),
        samples: longNumber(r.get('samples')),
        values_sum: Number(r.get('values_sum')),
        values_min: r.get('values_min') as number | null,
        values_max: r.get('values_max') as number | null,
        max_at: r.get('max_at') as number | null,
        seconds: Number(r.get('seconds')),
      } satisfies RollupRow),
    );
  }

  async readIntervalChecks(range: DeviceRange): Promise<IntervalCheck[]> {
    void this.handle; // throws when the store is not open
    const parts = await mapLimit(daySlices(range), READ_CONCURRENCY, (s) =>
      this.all(this.q.readChecks, [range.device_id, s.ec_date, s.fromTime, s.toTime], FETCH_SUMMARIES, 'read'),
    );
    // A check older than its re-open mark reads as pending.
    return parts
      .flat()
      .filter(isCheck)
      .map((r) => ({
        device_id: String(r.get('device_id')),
        ec_date: String(r.get('ec_date')),
        ec_time: String(r.get('ec_time')),
        interval_seconds: Number(r.get('interval_seconds')),
        values_count: Number(r.get('values_count')),
        values_checksum: String(r.get('values_checksum')),
        check_time: timestampMs(r.get('check_time')),
        check_times: Number(r.get('check_times')),
        status: reopenedSince(r) ? 'pending' : (String(r.get('status')) as CheckStatus),
      }));
  }

  /** The version token is written after the row: a receiver that reads the new token then reads the new row. */
  async putCredential(c: DeviceCredential): Promise<void> {
    const row = [c.device_id, c.realm, c.ha1_md5, c.ha1_sha256, c.created_ms, c.updated_ms];
    await this.run(this.q.putCredential, row, 'write');
    await this.run(this.q.setCredentialsVersion, [newCredentialsVersion()], 'write');
  }

  async readCredential(deviceId: string): Promise<DeviceCredential | undefined> {
    const rs = await this.run(this.q.readCredential, [deviceId], 'read');
    return rs.rows[0] ? toCredential(rs.rows[0]) : undefined;
  }

  async listCredentials(): Promise<DeviceCredential[]> {
    const rows = await this.all(this.q.listCredentials, [], FETCH_SUMMARIES, 'read');
    return rows.map(toCredential).sort((a, b) => (a.device_id < b.device_id ? -1 : 1));
  }

  async removeCredential(deviceId: string): Promise<boolean> {
    const found = await this.readCredential(deviceId);
    if (!found) return false;
    await this.run(this.q.removeCredential, [deviceId], 'delete');
    await this.run(this.q.setCredentialsVersion, [newCredentialsVersion()], 'write');
    return true;
  }

  async credentialsVersion(): Promise<string> {
    const rs = await this.run(this.q.credentialsVersion, [], 'read');
    return rs.rows[0] ? String(rs.rows[0].get('value')) : '';
  }

  /**
   * One statement per device (its own partition). Several receivers write these rows, each flushing
   * what it saw, in any order: so the row's write time is its last_seen (in microseconds), not the
   * time of the flush, and Cassandra's last-write-wins keeps the row of the latest sighting --
   * last_seen never moves backwards, whichever receiver flushes last. first_seen_ms is written apart
   * with the write time FIRST_SEEN_EPOCH_US - first_seen: there the earliest sighting wins.
   */
  async upsertDevices(rows: readonly DeviceRecord[]): Promise<void> {
    void this.handle; // throws when the store is not open
    const long = (n: number) => cassandra.types.Long.fromNumber(n);
    await mapLimit(rows, READ_CONCURRENCY * 4, async (r) => {
      const row = [
        r.device_id,
        long(r.last_seen_ms),
        // unset rather than null: a null writes a tombstone
        r.last_seq === null ? undefined : long(r.last_seq),
        r.day,
        long(r.batches_today),
        long(r.samples_today),
        long(r.last_seen_ms * 1000),
      ];
      await this.run(this.q.upsertDevice, row, 'write');
      const firstSeenAt = FIRST_SEEN_EPOCH_US.subtract(long(r.first_seen_ms).multiply(1000));
      await this.run(this.q.upsertFirstSeen, [firstSeenAt, long(r.first_seen_ms), r.device_id], 'write');
    });
  }

  async readDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const rs = await this.run(this.q.readDevice, [deviceId], 'read');
    return rs.rows[0] ? toDevice(rs.rows[0]) : undefined;
  }

  /** Pages in token order: `after` continues from the token of that device's partition. */
  async listDevices(page: { limit: number; after?: string }): Promise<DeviceRecord[]> {
    const rs =
      page.after === undefined
        ? await this.run(this.q.listDevices, [page.limit], 'read')
        : await this.run(this.q.listDevicesAfter, [page.after, page.limit], 'read');
    return rs.rows.map(toDevice);
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.shutdown();
  }
}

type RunCql = (cql: string, params: unknown[], what: string) => Promise<cassandra.types.ResultSet>;

/**
 * Leases as rows of ec_sync_lease, written only by lightweight transactions (Paxos at LOCAL_SERIAL,
 * committed at the store's consistency): INSERT IF NOT EXISTS takes a free name, UPDATE/DELETE IF
 * owner = me renew and release. Each write carries a TTL, so a dead owner's lease ends by itself.
 * A lightweight transaction whose answer was lost may be retried by the driver (the statements are
 * marked idempotent): a retried take finds the row already ours, which acquire counts as taken, and a
 * retried renew or release finds the same owner; so retries are harmless.
 */
class CassandraLeases implements DeviceLeases {
  private readonly q: { take: string; renew: string; release: string };

  constructor(
    ks: string,
    private readonly run: RunCql,
  ) {
    this.q = {
      take: `INSERT INTO ${ks}.ec_sync_lease (name, owner, taken_ms) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?`,
      renew: `UPDATE ${ks}.ec_sync_lease USING TTL ? SET owner = ?, taken_ms = ? WHERE name = ? IF owner = ?`,
      release: `DELETE FROM ${ks}.ec_sync_lease WHERE name = ? IF owner = ?`,
    };
  }

  async acquire(name: string, owner: string, ttlS: number): Promise<boolean> {
    const rs = await this.run(this.q.take, [name, owner, cassandra.types.Long.fromNumber(Date.now()), ttlS], 'lease');
    if (rs.wasApplied()) return true;
    return rs.first()?.get('owner') === owner && (await this.renew(name, owner, ttlS));
  }

  async renew(name: string, owner: string, ttlS: number): Promise<boolean> {
    const now = cassandra.types.Long.fromNumber(Date.now());
    return (await this.run(this.q.renew, [ttlS, owner, now, name, owner], 'lease')).wasApplied();
  }

  async release(name: string, owner: string): Promise<void> {
    await this.run(this.q.release, [name, owner], 'lease');
  }
}

/**
 * Works around a cassandra-driver 4.10 leak. After all nodes were down, the control connection may
 * reconnect by re-initialising (the NODEJS-632 path). That replaces each Host object in
 * client.hosts, but the old Host's pool stays open. If the pool had reconnected in the meantime,
 * its connection stays open too. Nothing uses that connection any more, yet it keeps the process
 * alive after shutdown(). The driver emits hostRemove for the old Host. Draining its pool at that
 * point is also right for a node that really left the cluster. Host#shutdown is not in the driver's
 * typings, so it is only called when present.
 */
function closeRemovedHostPool(host: unknown): void {
  const h = host as { shutdown?: (waitForPending: boolean) => Promise<void> };
  if (typeof h.shutdown === 'function') h.shutdown(true).catch(() => undefined);
}

/** A client-side write timestamp (microseconds), or undefined: the driver takes one itself. */
type WriteTime = cassandra.types.Long | number | undefined;

/**
 * About what a row weighs in a batch's size as the node counts it (its cells, their timestamps and
 * the clustering values): the values text and the device id, and ~250 bytes for the rest.
 */
function rowBytes(b: Batch): number {
  return b.ec_consumption_values.length + b.device_id.length + 250;
}

/** Whether two batches of the group have the same primary key. */
function hasRepeatedKey(batches: readonly Batch[]): boolean {
  const keys = new Set<string>();
  for (const b of batches) {
    const k = batchKeyString(b);
    if (keys.has(k)) return true;
    keys.add(k);
  }
  return false;
}

/**
 * The routing key of the row's partition (device_id, ec_date, ec_hour), composite as the protocol
 * encodes it: per component a 2-byte length, the UTF-8 bytes, a 0 byte.
 */
export function partitionRoutingKey(b: Pick<Batch, 'device_id' | 'ec_date' | 'ec_time'>): Buffer {
  const parts = [b.device_id, b.ec_date, b.ec_time.slice(0, 2)].map((x) => Buffer.from(x, 'utf8'));
  const out = Buffer.alloc(parts.reduce((n, p) => n + p.length + 3, 0));
  let at = 0;
  for (const p of parts) {
    at = out.writeUInt16BE(p.length, at);
    at += p.copy(out, at);
    out[at++] = 0;
  }
  return out;
}

/** The bound values of the upsert statement for one batch (exported for bench/cassandra-raw.mjs). */
export function cassandraUpsertParams(b: Batch, ttl: number, aggregates = true): unknown[] {
  // As ingest computed them with the parse; computed here only for a batch that comes without them.
  // Unset rather than null where there are none (a null writes a tombstone).
  const a = aggregates ? (b.values_stats ?? valueStats(b.ec_consumption_values)) : undefined;
  const has = a !== undefined && a.count > 0;
  return [
    b.device_id,
    b.ec_date,
    b.ec_time.slice(0, 2),
    b.ec_time,
    b.start_us,
    b.end_us,
    b.ec_consumption_values,
    b.values_count,
    b.values_checksum,
    // unset rather than null: a null would write a cell tombstone into every row without a seq
    b.batch_seq === null ? undefined : cassandra.types.Long.fromNumber(b.batch_seq),
    new Date(b.insert_time),
    has ? a.sum : undefined,
    has ? a.min : undefined,
    has ? a.max : undefined,
    has ? a.max_us : undefined,
    ttl,
  ];
}

/** Adds the aggregate columns to an ec_consumption from before them; resolves with the ones added. */
export async function addAggregateColumns(client: cassandra.Client, ks: string, timeoutMs: number): Promise<string[]> {
  const t = await client.metadata.getTable(ks, 'ec_consumption');
  if (!t) return [];
  const added = Object.entries(AGGREGATE_COLUMNS).filter(([c]) => !t.columns.some((k) => k.name === c));
  for (const [c, type] of added) {
    await client.execute(`ALTER TABLE ${ks}.ec_consumption ADD ${c} ${type}`, [], {
      prepare: false,
      readTimeout: Math.max(timeoutMs, 20_000),
    });
  }
  return added.map(([c]) => c);
}

function toAggregate(r: Row): BatchAggregate {
  return {
    device_id: String(r.get('device_id')),
    ec_date: String(r.get('ec_date')),
    ec_time: String(r.get('ec_time')),
    start_us: String(r.get('start_us')),
    end_us: String(r.get('end_us')),
    count: Number(r.get('values_count')),
    sum: Number(r.get('values_sum')),
    min: Number(r.get('values_min')),
    max: Number(r.get('values_max')),
    max_us: Number(r.get('values_max_us')),
  };
}

/** The CQL the store runs (exported for bench/cassandra-raw.mjs, which measures the same insert). */
export function cassandraStatements(ks: string) {
  const keyWhere = 'device_id = ? AND ec_date = ? AND ec_hour = ? AND ec_time = ? AND start_us = ? AND end_us = ?';
  const hourRange = 'device_id = ? AND ec_date = ? AND ec_hour = ? AND ec_time >= ? AND ec_time < ?';
  return {
    upsert:
      `INSERT INTO ${ks}.ec_consumption (${CONSUMPTION_COLUMNS.join(', ')}) VALUES ` +
      `(${CONSUMPTION_COLUMNS.map(() => '?').join(', ')}) USING TTL ?`,
    readBatches: `SELECT ${SUMMARY_COLUMNS}, ec_consumption_values FROM ${ks}.ec_consumption WHERE ${hourRange}`,
    readSummaries: `SELECT ${SUMMARY_COLUMNS} FROM ${ks}.ec_consumption WHERE ${hourRange}`,
    readAggregates:
      `SELECT device_id, ec_date, ec_time, start_us, end_us, values_count, ` +
      `${Object.keys(AGGREGATE_COLUMNS).join(', ')} ` +
      `FROM ${ks}.ec_consumption WHERE ${hourRange}`,
    exists: `SELECT values_count FROM ${ks}.ec_consumption WHERE ${keyWhere}`,
    deleteBatch: `DELETE FROM ${ks}.ec_consumption WHERE ${keyWhere}`,
    writeCheck: `INSERT INTO ${ks}.ec_checksum (${CHECK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`,
    readChecks:
      `SELECT ${CHECK_COLUMNS}, WRITETIME(status) AS status_written, WRITETIME(reopened) AS reopened_written ` +
      `FROM ${ks}.ec_checksum WHERE device_id = ? AND ec_date = ? AND ec_time >= ? AND ec_time < ?`,
    reopenCheck:
      `UPDATE ${ks}.ec_checksum USING TTL ? SET reopened = true WHERE device_id = ? AND ec_date = ? AND ` +
      `ec_time = ? AND interval_seconds = ?`,
    stored: `SELECT values_count, values_checksum FROM ${ks}.ec_consumption WHERE ${keyWhere}`,
    upsertRollup:
      `INSERT INTO ${ks}.ec_rollup_minute (device_id, ec_date, ec_minute, ${ROLLUP_VALUES}) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`,
    readRollups:
      `SELECT ec_date, ec_minute, ${ROLLUP_VALUES} FROM ${ks}.ec_rollup_minute ` +
      `WHERE device_id = ? AND ec_date = ? AND ec_minute >= ? AND ec_minute < ?`,
    putCredential: `INSERT INTO ${ks}.ec_device_credential (${CREDENTIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
    readCredential: `SELECT ${CREDENTIAL_COLUMNS} FROM ${ks}.ec_device_credential WHERE device_id = ?`,
    // A full scan, paged: one partition per device, read only when the cache (re)loads.
    listCredentials: `SELECT ${CREDENTIAL_COLUMNS} FROM ${ks}.ec_device_credential`,
    removeCredential: `DELETE FROM ${ks}.ec_device_credential WHERE device_id = ?`,
    setCredentialsVersion: `INSERT INTO ${ks}.ec_meta (name, value) VALUES ('credentials_version', ?)`,
    credentialsVersion: `SELECT value FROM ${ks}.ec_meta WHERE name = 'credentials_version'`,
    upsertDevice:
      `INSERT INTO ${ks}.ec_device (device_id, last_seen_ms, last_seq, day, batches_today, samples_today) ` +
      `VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    upsertFirstSeen: `UPDATE ${ks}.ec_device USING TIMESTAMP ? SET first_seen_ms = ? WHERE device_id = ?`,
    readDevice: `SELECT ${DEVICE_COLUMNS} FROM ${ks}.ec_device WHERE device_id = ?`,
    // Paged by partition token: the registry loads them all at start, `ec-server devices` lists them.
    listDevices: `SELECT ${DEVICE_COLUMNS} FROM ${ks}.ec_device LIMIT ?`,
    listDevicesAfter: `SELECT ${DEVICE_COLUMNS} FROM ${ks}.ec_device WHERE token(device_id) > token(?) LIMIT ?`,
  };
}

const ROLLUP_VALUES = 'samples, values_sum, values_min, values_max, max_at, seconds';
/**
 * Write times of first_seen_ms count down from here (2^62 us, year ~148,000): the earliest first
 * sighting has the latest write time and wins. ec-server never deletes ec_device rows; a DELETE by
 * hand must use USING TIMESTAMP above this to remove that cell.
 */
const FIRST_SEEN_EPOCH_US = cassandra.types.Long.fromString('4611686018427387904');
const DEVICE_COLUMNS = 'device_id, first_seen_ms, last_seen_ms, last_seq, day, batches_today, samples_today';
const CREDENTIAL_COLUMNS = 'device_id, realm, ha1_md5, ha1_sha256, created_ms, updated_ms';

function toDevice(r: Row): DeviceRecord {
  return {
    device_id: String(r.get('device_id')),
    first_seen_ms: longNumber(r.get('first_seen_ms')),
    last_seen_ms: longNumber(r.get('last_seen_ms')),
    last_seq: r.get('last_seq') === null ? null : longNumber(r.get('last_seq')),
    day: String(r.get('day')),
    batches_today: longNumber(r.get('batches_today')),
    samples_today: longNumber(r.get('samples_today')),
  };
}

function toCredential(r: Row): DeviceCredential {
  return {
    device_id: String(r.get('device_id')),
    realm: String(r.get('realm')),
    ha1_md5: String(r.get('ha1_md5')),
    ha1_sha256: String(r.get('ha1_sha256')),
    created_ms: longNumber(r.get('created_ms')),
    updated_ms: longNumber(r.get('updated_ms')),
  };
}

function longNumber(v: unknown): number {
  return v instanceof cassandra.types.Long ? v.toNumber() : Number(v);
}

function toSummary(r: Row): BatchSummary {
  const seq = r.get('batch_seq') as cassandra.types.Long | null;
  return {
    device_id: String(r.get('device_id')),
    ec_date: String(r.get('ec_date')),
    ec_time: String(r.get('ec_time')),
    start_us: String(r.get('start_us')),
    end_us: String(r.get('end_us')),
    values_count: Number(r.get('values_count')),
    values_checksum: String(r.get('values_checksum')),
    batch_seq: seq === null || seq === undefined ? null : seq.toNumber(),
    insert_time: timestampMs(r.get('insert_time')),
  };
}

/** A row with a status: one holding only a re-open mark (never checked) is no check. */
function isCheck(r: Row): boolean {
  return r.get('status') !== null && r.get('status') !== undefined;
}

/** A verified or repaired check whose re-open mark was written after it (cell timestamps): pending again. */
function reopenedSince(r: Row): boolean {
  const status = String(r.get('status'));
  if (status !== 'verified' && status !== 'repaired') return false;
  const reopened = r.get('reopened_written') as cassandra.types.Long | null;
  const written = r.get('status_written') as cassandra.types.Long | null;
  return reopened !== null && reopened !== undefined && (written === null || reopened.greaterThan(written));
}

function timestampMs(v: unknown): number {
  return v instanceof Date ? v.getTime() : Number(v);
}

const CONSISTENCIES: Record<CassandraConfig['consistency'], number> = {
  LOCAL_QUORUM: cassandra.types.consistencies.localQuorum,
  QUORUM: cassandra.types.consistencies.quorum,
  EACH_QUORUM: cassandra.types.consistencies.eachQuorum,
  ALL: cassandra.types.consistencies.all,
  LOCAL_ONE: cassandra.types.consistencies.localOne,
  ONE: cassandra.types.consistencies.one,
  TWO: cassandra.types.consistencies.two,
  THREE: cassandra.types.consistencies.three,
};

function consistencyCode(name: CassandraConfig['consistency']): number {
  const c = CONSISTENCIES[name];
  if (c === undefined) throw new RangeError(`unknown consistency ${name}`);
  return c;
}

/** Every failure becomes StoreUnavailableError (503 + Retry-After on the SIP side), with the driver error as cause. */
function unavailable(e: unknown, what: string): StoreUnavailableError {
  if (e instanceof StoreUnavailableError) return e;
  return new StoreUnavailableError(`${what}: ${describe(e)}`, e);
}

function describe(e: unknown): string {
  if (e instanceof cassandra.errors.NoHostAvailableError) {
    const inner = Object.entries((e.innerErrors ?? {}) as Record<string, unknown>)
      .map(([host, err]) => `${host}: ${(err as Error)?.message ?? String(err)}`)
      .join('; ');
    return inner ? `no host available (${inner})` : 'no host available';
  }
  const name = (e as Error)?.constructor?.name ?? 'Error';
  return `${name}: ${(e as Error)?.message ?? String(e)}`;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`Cassandra ${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
