import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './config/load-config.js';
import { CredentialCache } from './auth/credential-cache.js';
import { DigestAuthenticator } from './auth/digest-authenticator.js';
import { isLoopback } from './auth/loopback.js';
import { sipTls, syncTls } from './config/tls-options.js';
import { ConfigError, EcError } from './errors.js';
import { HttpServer } from './http/http-server.js';
import { ConsumptionQuery } from './query/consumption-query.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { ReplacementWatch } from './ingest/replacement-watch.js';
import { GroupCommitter } from './ingest/group-commit.js';
import { LoopBusy } from './ingest/loop-busy.js';
import { openIngestSink } from './ingest/open-sink.js';
import { DeviceRegistry } from './registry/device-registry.js';
import { SipHandler } from './ingest/sip-handler.js';
import { RateLimit } from './protocol/rate-limit.js';
import { TransactionLayer } from './protocol/transaction-layer.js';
import type { ConsumptionStore } from './store/consumption-store.js';
import { createStore } from './store/open-store.js';
import { TcpTransport } from './transport/tcp-transport.js';
import { UdpTransport } from './transport/udp-transport.js';
import { SyncService } from './sync/sync-service.js';

export interface RunningServer {
  /** The SIP port actually bound (differs from config when sip.port=0). */
  port: number;
  address: string;
  store: ConsumptionStore;
  committer: GroupCommitter;
  layer: TransactionLayer;
  /** The TCP transport, when sip.transports has tcp. */
  tcp: TcpTransport | undefined;
  /** SIP over TLS, when tls.certificate and tls.key are set. */
  tls: TcpTransport | undefined;
  /** The SIP TLS port actually bound (differs from config when sip.tls_port=0). */
  tlsPort: number | undefined;
  /** The sync service, when sync.enabled. */
  sync: SyncService | undefined;
  /** Port of the sync service (differs from config when sync.port=0). */
  syncPort: number | undefined;
  /** Port of the HTTP endpoints (/metrics, /healthz, /readyz) when http.enabled (differs when http.port=0). */
  httpPort: number | undefined;
  /** Every device ever seen (GET /api/devices). */
  devices: DeviceRegistry;
  /** The server's Prometheus registry and commit histograms. */
  metrics: ServerMetrics;
  /**
   * Reads the certificate files again (SIGHUP): new TLS connections use them, established ones keep theirs. A file
   * that cannot be used throws (ConfigError naming key and file) and the certificates in use stay.
   */
  reloadTls(): void;
  /** Acknowledged batches replaced with other values, counted and logged. */
  replacements: ReplacementWatch;
  /** Stop accepting, answer what is in progress, close the store. */
  stop(): Promise<void>;
}

/**
 * Wires the layers together, socket to store, data flowing one way:
 * transport (udp/tcp/tls) -> protocol (framing, transactions) -> ingest (handler, group commit) -> store.
 */
export interface ServerOptions {
  /** Epoch seconds for the sync service (tests run simulated time). */
  now?: () => number;
  /** Run sync rounds on the cron schedule (default true). */
  syncSchedule?: boolean;
}

export async function startServer(
  config: Config,
  log: Logger,
  store: ConsumptionStore = createStore(config, 'ingest'),
  options: ServerOptions = {},
): Promise<RunningServer> {
  // Before anything is opened: a configuration that would expose /metrics without a token is refused.
  const httpTokens = config.http.enabled ? httpTokensChecked(config, log) : [];
  // Certificates are read (and checked against their keys) before anything is opened too.
  const sipTlsServing = sipTls(config);
  const syncTlsServing = syncTls(config);
  await store.open();
  const devices = new DeviceRegistry(store, {
    offlineAfterMs: config.devices.offlineAfterS * 1000,
    flushMs: config.devices.flushS * 1000,
    onOffline: (device, lastSeenMs) =>
      log.info({ device, lastSeen: new Date(lastSeenMs).toISOString() }, 'device offline'),
    onOnline: (device, offlineMs) => log.info({ device, silentMs: offlineMs }, 'device online again'),
    onFlushError: (e, rows) =>
      log.warn({ err: String((e as Error)?.message ?? e), rows }, 'device registry flush failed, retried later'),
  });
  try {
    await devices.load();
  } catch (e) {
    await store.close();
    throw e;
  }
  const metrics = new ServerMetrics();
  // Closed with the store (a SQLite store routes its writes to the sink's thread and closes it first).
  let sink;
  try {
    sink = await openIngestSink(store, {
      writer: config.storage.sqliteWriter,
      bounds: { maxBatches: config.storage.commitMaxBatches, maxBytes: config.storage.commitMaxBytes },
      maxFutureS: config.ingest.maxFutureS,
      aggregates: config.storage.aggregates,
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  // Started once everything listens (below): start-up work on the loop is not overload.
  const loopBusy = new LoopBusy(config.ingest.maxLoopBusy, {
    // Retransmissions are answered from the cache: not load a cut would relieve, nor new batches.
    requestsSoFar: (): number => layer.stats.requests - layer.stats.retransmissions,
    receiveBacklog: (): number | undefined => udp?.receiveBacklog(),
  });
  const committer = new GroupCommitter(sink, {
    maxBatches: config.storage.commitMaxBatches,
    maxBytes: config.storage.commitMaxBytes,
    maxQueued: config.storage.maxQueuedBatches,
    maxQueuedBytes: config.storage.maxQueuedBytes,
    maxWaitMs: config.ingest.maxWaitMs,
    loopRefusal: (sender) => loopBusy.refusal(sender),
    onSlowCommit: (ms, batches) =>
      log.warn({ ms, batches, backend: store.backend }, `slow commit: ${ms} ms for ${batches} batches`),
    onOverload: (reason, refused) =>
      log.warn(
        { refused, drainRatePerSecond: committer.drainRatePerSecond, backend: store.backend },
        `overloaded, answering 503: ${reason} (${refused} refused since the last report)`,
      ),
    onCommit: metrics.observeCommit,
    onStored: devices.observe,
    onSequenceGap: ([device, seq, expected]) => log.info({ device, seq, expected }, 'batch sequence gap'),
  });
  const credentials = new CredentialCache(
    store,
    {
      refreshMs: config.security.credentialsRefreshS * 1000,
      pollMs: 1000,
      negativeMs: 10_000,
      maxNegative: 100_000,
    },
    log,
  );
  try {
    await credentials.start();
  } catch (e) {
    await store.close();
    throw e;
  }
  // One answer for SIP and sync: a device's secret is what lets a peer speak for it on either.
  const required = authRequired(config, log);
  const authenticator = new DigestAuthenticator(
    {
      realm: config.security.realm,
      algorithms: config.security.digestAlgorithms,
      required,
      nonceLifetimeMs: config.security.nonceLifetimeS * 1000,
      nonceKey: config.security.nonceKey ?? randomBytes(32),
    },
    credentials,
  );
  const { deviceRateLimit: perDevice, deviceRateLimitBurst } = config.sip;
  const deviceRateLimit = perDevice > 0 ? new RateLimit(perDevice, deviceRateLimitBurst) : undefined;
  const handler = new SipHandler(
    committer,
    { retryAfterS: config.sip.retryAfterS, authenticator, deviceRateLimit },
    log,
  );
  const rateLimit =
    config.sip.rateLimit > 0 ? new RateLimit(config.sip.rateLimit, config.sip.rateLimitBurst) : undefined;
  const layer = new TransactionLayer(
    handler,
    {
      cacheSize: config.sip.transactionCacheSize,
      cacheBytes: config.sip.transactionCacheBytes,
      answerDeadlineMs: config.ingest.maxAnswerMs,
    },
    log,
    rateLimit,
  );
  const limits = { maxHeaderBytes: config.sip.maxHeaderBytes, maxBodyBytes: config.sip.maxBodyBytes };
  const udp = config.sip.transports.includes('udp') ? new UdpTransport(layer, limits, log) : undefined;
  // TLS is TCP behind a handshake: the same framing, bounds and transaction path.
  const streamOptions = {
    idleTimeoutS: config.sip.tcpIdleTimeoutS,
    maxConnections: config.sip.tcpMaxConnections,
    maxConnectionsPerSource: config.sip.tcpMaxConnectionsPerSource,
    requestTimeoutS: config.sip.tcpRequestTimeoutS,
    maxUnsentBytes: config.sip.tcpMaxUnsentBytes,
  };
  const tcp = config.sip.transports.includes('tcp') ? new TcpTransport(layer, limits, streamOptions, log) : undefined;
  const tls = sipTlsServing
    ? new TcpTransport(layer, limits, { ...streamOptions, tls: sipTlsServing }, log)
    : undefined;

  const address = config.sip.listenAddr;
  let port: number;
  let tlsPort: number | undefined;
  try {
    port = await bindBoth(address, config.sip.port, udp, tcp);
    tlsPort = tls
      ? await listenOrExplain('tls', address, config.sip.tlsPort, (p) => tls.listen(address, p)).catch(async (e) => {
          await Promise.all([udp?.close(), tcp?.close()]);
          throw e;
        })
      : undefined;
  } catch (e) {
    await store.close();
    throw e;
  }
  const sync = config.sync.enabled
    ? new SyncService(
        store,
        {
          host: config.sync.ip,
          port: config.sync.port,
          auth: { realm: config.security.realm, required, credentials },
          periodS: config.sync.freqMinutes * 60,
          graceS: config.sync.graceS,
          deleteExtraneous: config.sync.deleteExtraneous,
          requestTimeoutMs: config.sync.requestTimeoutS * 1000,
          concurrency: config.sync.concurrency,
          maxConnections: config.sync.maxConnections,
          idleTimeoutS: config.sync.idleTimeoutS,
          maxPeriodsPerRound: config.sync.maxPeriodsPerRound,
          leaseSeconds: config.sync.leaseSeconds,
          unwatermarkedLagS: config.sync.unwatermarkedLagS,
          now: options.now,
          schedule: options.syncSchedule,
          tls: syncTlsServing,
        },
        log,
      )
    : undefined;
  let syncPort: number | undefined;
  try {
    syncPort = sync
      ? await listenOrExplain('sync tcp', config.sync.ip, config.sync.port, () => sync.listen())
      : undefined;
  } catch (e) {
    await Promise.all([udp?.close(), tcp?.close(), tls?.close()]);
    await store.close();
    throw e;
  }
  log.info(
    { address, port, transports: config.sip.transports, backend: store.backend },
    `listening for SIP on ${config.sip.transports.join('+')} ${address}:${port}`,
  );
  if (tls) {
    log.info(
      { address, port: tlsPort, clientCertificates: config.tls.clientCertificates },
      `listening for SIP on tls ${address}:${tlsPort}`,
    );
  }

  let stopping: Promise<void> | undefined;
  const storeUp = () => storeAnswers(store);
  // Acknowledged batches replaced with other values: counted and logged (the store notes them as it writes).
  const replacements = new ReplacementWatch(store, log);
  await replacements.start();
  metrics.watch({
    layer,
    handler,
    committer,
    authenticator,
    credentials,
    tcp,
    tls,
    sync,
    storeUp,
    registry: devices,
    replacements,
    loop: loopBusy,
    writeLimit: store.writeLimit,
  });
  devices.start();
  // Started after SIP is bound: /readyz answering 200 means SIP is listening.
  const http = config.http.enabled
    ? new HttpServer(
        {
          host: config.http.listenAddr,
          port: config.http.port,
          tokens: httpTokens,
          ready: async () => {
            if (stopping) return { ready: false, why: 'stopping' };
            return (await storeUp()) ? { ready: true } : { ready: false, why: 'the store does not answer' };
          },
          metrics: async () => ({ contentType: metrics.contentType, text: await metrics.metrics() }),
          devices: (q) => devices.list(q),
          read: { query: new ConsumptionQuery(store), knows: (id) => devices.has(id) },
        },
        log,
      )
    : undefined;
  let httpPort: number | undefined;
  try {
    httpPort = http
      ? await listenOrExplain('http tcp', config.http.listenAddr, config.http.port, () => http.listen())
      : undefined;
  } catch (e) {
    await Promise.all([udp?.close(), tcp?.close(), tls?.close(), sync?.close()]);
    await credentials.stop();
    await devices.stop();
    await replacements.stop();
    await store.close();
    throw e;
  }
  if (http) {
    log.info(
      { address: config.http.listenAddr, port: httpPort, tokens: httpTokens.length },
      `serving /metrics, /healthz, /readyz, /api/devices[/:id/consumption|daily|sync], /dashboard/ on http ` +
        `${config.http.listenAddr}:${httpPort}`,
    );
  }

  loopBusy.start();
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info('stopping: new batches are answered 503, batches in progress are finished');
      handler.stopping = true;
      const credentialsStopped = credentials.stop();
      loopBusy.stop();
      await Promise.all([udp?.close(), tcp?.close(), tls?.close(), sync?.close(), http?.close()]);
      await committer.drain();
      await devices.stop();
      await replacements.stop();
      await credentialsStopped;
      await store.close();
      const bounds = {
        tcp: tcp?.stats,
        tls: tls?.stats,
        rateLimited: rateLimit?.refused,
        deviceRateLimited: deviceRateLimit?.refused,
      };
      // The store's write concurrency (Cassandra: the adaptive limit), for the bench's raw baseline too.
      const writes = store.writeLimit && { ...store.writeLimit.stats, ...store.writeCounts };
      log.info({ stats: layer.stats, commits: committer.stats, auth: authenticator.stats, bounds, writes }, 'stopped');
    })());

  const reloadTls = (): void => {
    // Both read and checked before either is switched: a bad file changes nothing.
    const sipNow = tls ? sipTls(config) : undefined;
    const syncNow = sync ? syncTls(config) : undefined;
    if (sipNow) tls?.setSecureContext(sipNow.options);
    if (syncNow) sync?.setSecureContext(syncNow.options);
  };

  return {
    reloadTls,
    port,
    address,
    store,
    committer,
    layer,
    tcp,
    tls,
    tlsPort,
    sync,
    syncPort,
    httpPort,
    devices,
    metrics,
    replacements,
    stop,
  };
}

/** How long /readyz and ec_store_up wait for the store's answer. */
const STORE_PROBE_MS = 2000;

/** Whether the store answers a cheap read (a credential lookup) within STORE_PROBE_MS. */
async function storeAnswers(store: ConsumptionStore): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STORE_PROBE_MS)));
  try {
    const read = store.readCredential('readiness-probe').then(
      () => true,
      () => false,
    );
    return await Promise.race([read, timeout]);
  } catch {
    return false; // a store that throws at once (closed)
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The bearer tokens /metrics requires. Beyond loopback at least one is required, as SIP requires credentials
 * there: without one the server refuses to start, naming the key, unless http.allow_anonymous=true (then a
 * warning at every start). On loopback tokens are optional; when set, they are required there too.
 */
function httpTokensChecked(config: Config, log: Logger): string[] {
  const { listenAddr, tokens, allowAnonymous } = config.http;
  if (tokens.length > 0 || isLoopback(listenAddr)) return tokens;
  if (!allowAnonymous) {
    throw new ConfigError(
      undefined,
      'http.tokens',
      `http.listen_addr=${listenAddr} is beyond loopback: set at least one bearer token for /metrics, or ` +
        'http.allow_anonymous=true to serve it to anyone who can reach it (docs/security.md)',
    );
  }
  log.warn(
    { address: listenAddr },
    `SECURITY: serving /metrics on ${listenAddr} without a token (http.allow_anonymous=true): anyone who can ` +
      'reach this port can read them (docs/security.md)',
  );
  return tokens;
}

/**
 * Whether MESSAGEs and sync hellos need credentials: when asked to, and always when SIP or sync listens beyond
 * loopback, unless security.allow_anonymous=true says otherwise (then a warning at every start).
 */
function authRequired(config: Config, log: Logger): boolean {
  if (config.security.requireAuth) return true;
  const exposed = [config.sip.listenAddr, ...(config.sync.enabled ? [config.sync.ip] : [])].filter(
    (a) => !isLoopback(a),
  );
  if (exposed.length === 0) return false;
  if (!config.security.allowAnonymous) return true;
  log.warn(
    { exposed },
    `SECURITY: listening on ${exposed.join(', ')} with security.allow_anonymous=true: anyone who can reach ` +
      'this server can write data for any device without credentials (docs/security.md)',
  );
  return false;
}

/** UDP and TCP on the same port; with port 0 the OS picks one that is free for both. */
async function bindBoth(address: string, port: number, udp?: UdpTransport, tcp?: TcpTransport): Promise<number> {
  const attempts = port === 0 ? 20 : 1;
  for (let i = 1; ; i++) {
    let bound = port;
    try {
      if (udp) bound = await listenOrExplain('udp', address, bound, (p) => udp.listen(address, p));
      if (tcp) bound = await listenOrExplain('tcp', address, bound, (p) => tcp.listen(address, p));
      return bound;
    } catch (e) {
      await udp?.close();
      if (i >= attempts) throw e;
    }
  }
}

async function listenOrExplain(
  kind: string,
  address: string,
  port: number,
  listen: (p: number) => Promise<number>,
): Promise<number> {
  try {
    return await listen(port);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new EcError('EC_LISTEN_FAILED', `cannot listen on ${kind} ${address}:${port}: ${code}`);
  }
}
