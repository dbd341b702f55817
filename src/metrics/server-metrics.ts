import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DigestAuthenticator } from '../auth/digest-authenticator.js';
import { SIP_ERRORS, type SipErrorCode } from '../errors.js';
import type { GroupCommitter } from '../ingest/group-commit.js';
import type { SipHandler } from '../ingest/sip-handler.js';
import type { TransactionLayer } from '../protocol/transaction-layer.js';
import type { DeviceRegistry } from '../registry/device-registry.js';
import type { SyncService } from '../sync/sync-service.js';
import type { TcpTransport } from '../transport/tcp-transport.js';
import { VERSION } from '../version.js';

/** What the metrics read at scrape time: the stats objects the server keeps anyway. */
export interface MetricSources {
  layer: TransactionLayer;
  handler: SipHandler;
  committer: GroupCommitter;
  authenticator: DigestAuthenticator;
  /** Devices with credentials (the credential cache). */
  credentials: { readonly size: number };
  tcp: TcpTransport | undefined;
  /** SIP over TLS (a TcpTransport serving TLS). */
  tls: TcpTransport | undefined;
  sync: SyncService | undefined;
  /** The device registry: devices online and offline, offline transitions. */
  registry: DeviceRegistry;
  /** Whether the store answers a read now (the same probe as /readyz). */
  storeUp: () => Promise<boolean>;
  /** Acknowledged batches replaced with other values since the start (ingest/replacement-watch.ts). */
  replacements: { readonly count: number };
  /** The receiver's own overload rule (ingest/loop-busy.ts): its last window and the share it admits. */
  loop: { readonly lastPct: number; readonly admittedPct: number };
  /** A store writing under an adaptive concurrency limit (Cassandra): the limit and the writes in flight. */
  writeLimit: { readonly limit: number; readonly inFlightNow: number } | undefined;
}

/** Commit durations, seconds: SQLite commits take ms, a stalled store seconds (SIP's T1 is 0.5 s). */
const COMMIT_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Batches per commit, up to storage.commit_max_batches (2000 by default). */
const GROUP_SIZES = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000];

/** prom-client's default metrics that are gauges with a `_total` suffix. */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** The 503s' error codes, and the reason label each is counted under in ec_sip_unavailable_total. */
const UNAVAILABLE = (Object.keys(SIP_ERRORS) as SipErrorCode[]).filter((c) => SIP_ERRORS[c].status === 503);

/**
 * The server's Prometheus metrics, on a registry of its own (not prom-client's global one: two servers in one
 * process, as in the tests, keep theirs apart). Almost everything is read at scrape time, in `collect()`, from
 * counters the server keeps anyway (TransactionLayer.stats, GroupCommitter.stats...): the receive path pays
 * nothing for it. Only the commit histograms are observed as they happen, once per commit.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly commitSeconds: Histogram;
  private readonly groupBatches: Histogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters, which `promtool check metrics` reports; the same counts are in
    // nodejs_active_handles, nodejs_active_requests and nodejs_active_resources (by type).
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);
    const registers = [this.registry];
    this.commitSeconds = new Histogram({
      name: 'ec_commit_duration_seconds',
      help: 'Duration of each group commit (one store transaction), from hand-over to durable.',
      buckets: COMMIT_SECONDS,
      registers,
    });
    this.groupBatches = new Histogram({
      name: 'ec_commit_group_batches',
      help: 'Batches per group commit.',
      buckets: GROUP_SIZES,
      registers,
    });
    new Gauge({
      name: 'ec_build_info',
      help: 'Always 1; the version of ec-server as a label.',
      labelNames: ['version'],
      registers,
    }).set({ version: VERSION }, 1);
  }

  /** GroupCommitOptions.onCommit. */
  readonly observeCommit = (seconds: number, batches: number): void => {
    this.commitSeconds.observe(seconds);
    this.groupBatches.observe(batches);
  };

  /** Registers the metrics read from the server's stats objects; once, when the server is wired. */
  watch(s: MetricSources): void {
    const registers = [this.registry];
    /** A counter whose value is read from `value()` at scrape time. */
    const counter = (name: string, help: string, value: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    };
    const gauge = (name: string, help: string, value: () => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    };
    const { layer, handler, committer, authenticator } = s;

    new Counter({
      name: 'ec_sip_requests_total',
      help:
        'SIP requests answered, by transport, method (MESSAGE, OPTIONS, other) and response status; ' +
        'retransmissions answered from the transaction cache are in ec_sip_retransmissions_total.',
      labelNames: ['transport', 'method', 'status'],
      registers,
      collect() {
        this.reset();
        for (const [transport, byMethod] of Object.entries(layer.stats.responses)) {
          for (const [method, byStatus] of Object.entries(byMethod)) {
            for (const [status, n] of Object.entries(byStatus)) this.inc({ transport, method, status }, n);
          }
        }
      },
    });
    counter(
      'ec_sip_requests_received_total',
      'SIP requests received (ACKs, rejections and retransmissions included).',
      () => layer.stats.requests,
    );
    counter(
      'ec_sip_retransmissions_total',
      'UDP retransmissions absorbed: answered from the transaction cache, never stored twice.',
      () => layer.stats.retransmissions,
    );
    counter(
      'ec_sip_late_answers_total',
      'UDP MESSAGEs answered 503: their batch not committed within ingest.max_answer_ms (its write goes on).',
      () => layer.lateAnswers,
    );
    counter(
      'ec_sip_discarded_total',
      'Messages dropped without an answer: keep-alives, responses, requests that cannot be answered (no usable Via).',
      () => layer.stats.discarded,
    );
    new Counter({
      name: 'ec_sip_rejections_total',
      help: 'SIP error responses by error code (docs/errors.md), 401 challenges included.',
      labelNames: ['code', 'status'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(handler.rejections) as [SipErrorCode, number][]) {
          this.inc({ code, status: String(SIP_ERRORS[code].status) }, n);
        }
      },
    });
    new Counter({
      name: 'ec_sip_unavailable_total',
      help: '503 responses by reason (their error code): overload, store unavailable, stopping, rate limit.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const reason of UNAVAILABLE) this.inc({ reason }, handler.rejections[reason] ?? 0);
      },
    });

    counter('ec_batches_stored_total', 'Batches stored (durable, answered 200).', () => committer.stats.batches);
    counter('ec_samples_stored_total', 'Records (samples) of the batches stored.', () => committer.stats.records);
    counter('ec_commits_total', 'Group commits (store transactions) that succeeded.', () => committer.stats.commits);
    counter(
      'ec_commit_failures_total',
      'Group commits that failed (their batches answered 503).',
      () => committer.stats.failures,
    );
    counter(
      'ec_sequence_gaps_total',
      'X-EC-Seq gaps seen (a batch skipped ahead of the next expected number; sync repairs them).',
      () => committer.stats.sequenceGaps,
    );
    gauge('ec_commit_queue_batches', 'Batches waiting for or in a commit.', () => committer.queued);
    gauge('ec_commit_queue_bytes', 'Bytes of batches waiting for or in a commit.', () => committer.queuedBytes);
    gauge(
      'ec_overload_loop_busy_ratio',
      "Share of the last 100-ms window the event loop was busy (ingest.max_loop_busy's measure; 0 when it is off).",
      () => s.loop.lastPct / 100,
    );
    gauge(
      'ec_overload_admitted_ratio',
      'Share of new batches the event-loop overload rule admits now (1: all; ingest.max_loop_busy).',
      () => s.loop.admittedPct / 100,
    );
    const writes = s.writeLimit;
    if (writes) {
      gauge(
        'ec_store_write_limit',
        "Writes the store's adaptive limit lets in flight now (Cassandra).",
        () => writes.limit,
      );
      gauge('ec_store_writes_in_flight', 'Writes to the store in flight now (Cassandra).', () => writes.inFlightNow);
    }

    new Counter({
      name: 'ec_auth_total',
      help: 'Digest authentication outcomes of MESSAGEs and sync hellos.',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        for (const [result, n] of Object.entries(authenticator.stats)) this.inc({ result }, n);
      },
    });

    const tcp = s.tcp;
    gauge('ec_sip_tcp_connections', 'Open SIP TCP connections.', () => tcp?.connections ?? 0);
    counter(
      'ec_sip_tcp_refused_total',
      'SIP TCP connections closed at once for sip.tcp_max_connections_per_source.',
      () => tcp?.stats.refusedPerSource ?? 0,
    );
    counter(
      'ec_sip_tcp_request_timeouts_total',
      'SIP TCP connections closed in the middle of a request (sip.tcp_request_timeout).',
      () => tcp?.stats.requestTimeouts ?? 0,
    );

    const tls = s.tls;
    gauge('ec_sip_tls_connections', 'Open SIP TLS connections (handshake completed).', () => tls?.connections ?? 0);
    counter(
      'ec_sip_tls_handshake_failures_total',
      'SIP TLS connections closed before they could send a request: handshake failed or timed out ' +
        '(tls.handshake_timeout), client certificate refused.',
      () => tls?.stats.handshakeFailures ?? 0,
    );
    counter(
      'ec_sip_tls_refused_total',
      'SIP TLS connections closed at once for sip.tcp_max_connections_per_source.',
      () => tls?.stats.refusedPerSource ?? 0,
    );
    counter(
      'ec_batches_replaced_total',
      'Acknowledged batches replaced with other values (SIP or sync repairs of corrupted ones); each re-opens its ' +
        'sync period.',
      () => s.replacements.count,
    );

    const sync = s.sync;
    gauge('ec_sync_connections', 'Open sync connections.', () => sync?.openConnections ?? 0);
    counter('ec_sync_rounds_total', 'Sync rounds run.', () => sync?.stats.rounds ?? 0);
    new Counter({
      name: 'ec_sync_periods_total',
      help: 'Periods reconciled by sync (rounds and catch-ups), by result.',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(sync?.stats.periods ?? {})) this.inc({ status }, n);
      },
    });
    counter(
      'ec_sync_batches_repaired_total',
      'Batches fetched from meters by sync and stored.',
      () => sync?.stats.batchesRepaired ?? 0,
    );
    counter(
      'ec_sync_errors_total',
      'Reconciliations interrupted (the period stays pending).',
      () => sync?.stats.errors ?? 0,
    );

    new Gauge({
      name: 'ec_devices',
      help:
        'Devices by state: online and offline in the device registry (devices.offline_after); with credentials ' +
        'on this server; named by a connected sync meter.',
      labelNames: ['state'],
      registers,
      collect() {
        this.set({ state: 'online' }, s.registry.onlineCount);
        this.set({ state: 'offline' }, s.registry.size - s.registry.onlineCount);
        this.set({ state: 'with_credentials' }, s.credentials.size);
        this.set({ state: 'sync_connected' }, sync?.connectedDevices ?? 0);
      },
    });
    counter(
      'ec_device_offline_transitions_total',
      'Devices that turned offline (not seen for devices.offline_after), each transition once.',
      () => s.registry.stats.offlineTransitions,
    );
    new Gauge({
      name: 'ec_store_up',
      help: '1 when the store answers a read, else 0.',
      registers,
      async collect() {
        this.set((await s.storeUp()) ? 1 : 0);
      },
    });
  }

  /** The text exposition format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
