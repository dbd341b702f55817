import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { hostname } from 'node:os';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { compactToEpochSecond, type BatchKey } from '../domain/batch.js';
import type { DeviceCredential } from '../domain/device-credential.js';
import { SyncProtocolError } from '../errors.js';
import type { CheckStatus, ConsumptionStore, IntervalSummary } from '../store/consumption-store.js';
import { MAX_RANGE_SECONDS } from '../store/consumption-store.js';
import type { DeviceLeases } from '../store/device-leases.js';
import { reconcilePeriod, type PeriodResult, type SyncPeer } from './reconciler.js';
import { peerText } from './peer-text.js';
import { SyncConnection } from './sync-connection.js';
import { WorkSlots } from '../util/work-slots.js';
import {
  isDeviceList,
  proofMatches,
  SYNC_PROTOCOL_VERSION,
  type Hello,
  type SyncMessage,
  type WireBatch,
  type WireSummary,
} from './sync-protocol.js';

/** Who may sync which device: the server's credentials (the same as SIP digest auth's) and policy. */
export interface SyncAuth {
  /** security.realm, announced in the challenge. */
  realm: string;
  /**
   * Every device of a hello must be proven (else EC_SYNC_AUTH_FAILED); false: devices without credentials
   * may sync anonymously (those with credentials must be proven all the same).
   */
  required: boolean;
  /** The device's credential, undefined when it has none (a CredentialCache). */
  credentials: { get(device: string): DeviceCredential | undefined | Promise<DeviceCredential | undefined> };
}

export interface SyncServiceOptions {
  auth: SyncAuth;
  host: string;
  port: number;
  /** Length of a reconciliation period in seconds (sync.syncfreq minutes). */
  periodS: number;
  /** A period is reconciled only once it ended this many seconds ago (late batches settle). */
  graceS: number;
  deleteExtraneous: boolean;
  requestTimeoutMs: number;
  /** Clients reconciled at the same time during a round. */
  concurrency: number;
  /** Epoch seconds; injectable so that tests can run simulated time. */
  now?: () => number;
  /** Run rounds on the node-cron schedule (off in tests that trigger rounds themselves). */
  schedule?: boolean;
  /** Reconcile a client's unverified periods as soon as it says hello. */
  catchUpOnConnect?: boolean;
  /** Concurrent connections (sync.max_connections); more get EC_SYNC_BUSY and are closed. */
  maxConnections?: number;
  /** Seconds without a byte either way before a connection is closed (sync.idle_timeout). */
  idleTimeoutS?: number;
  /** Most periods reconciled per client in one round or catch-up (sync.max_periods_per_round). */
  maxPeriodsPerRound?: number;
  /**
   * Seconds a device's sync lease lasts unless renewed (sync.lease_seconds); renewed before each period,
   * so it must exceed the time one period's reconciliation takes. Default 120.
   */
  leaseSeconds?: number;
  /** The leases to take (default: the store's, shared by every receiver of that store). */
  leases?: DeviceLeases;
  /**
   * For a meter that declares no watermark (an older one): its periods count as final only once they ended
   * this many seconds before the server clock (sync.unwatermarked_lag).
   */
  unwatermarkedLagS?: number;
  /** Serve sync over TLS only (sync.tls): built from config by config/tls-options.ts. */
  tls?: {
    options: tls.TlsOptions;
    handshakeTimeoutMs: number;
    /** Why an established connection must be closed (a client certificate that did not verify), or undefined. */
    refuse(socket: tls.TLSSocket): string | undefined;
  };
}

const DEFAULT_LEASE_SECONDS = 120;

/** sync.unwatermarked_lag's default. */
export const DEFAULT_UNWATERMARKED_LAG_S = 86_400;

/** Catch-ups kept for tests to await; older ones are dropped (every hello adds one). */
const CATCH_UPS_KEPT = 100;

interface Client {
  conn: SyncConnection;
  devices: string[];
  retentionS: number;
  /** Devices whose secret the hello proved; only theirs may lose data the meter does not know. */
  proven: Set<string>;
  /** The hello's watermark (epoch second), for answers that carry none; undefined: the meter sends none. */
  helloFinal: number | undefined;
  /** Reconciliations of one client run one after another. */
  queue: Promise<unknown>;
  /**
   * Index of the device the next round starts with: a round that spends its period budget stops
   * at some device, and the next one continues from there, so that periods that stay unsettled
   * (a device the meter cannot answer for) do not starve the devices after them.
   */
  nextDevice: number;
}

export interface RoundReport {
  clients: number;
  periods: PeriodResult[];
  errors: { device: string; error: string }[];
  /** Devices left to the receiver that held their sync lease (it reconciles them). */
  leased: string[];
  ms: number;
}

/**
 * The sync service: meters connect to it (they are behind NAT), say which devices they journal,
 * and are then asked, period by period, for digests and missing batches (docs/sync-protocol.md).
 */
export class SyncService {
  private server: net.Server | undefined;
  private readonly clients = new Set<Client>();
  /** Every open connection, welcomed or not (the connection cap counts them all). */
  private readonly sockets = new Set<net.Socket>();
  /** Every accepted TCP connection, TLS handshakes in progress included (the cap counts these over TLS). */
  private readonly raw = new Set<net.Socket>();
  /** Connections refused at the cap (sync.max_connections) so far. */
  refusedConnections = 0;

  /** For the metrics: rounds run, periods reconciled by result, batches fetched, reconciliations interrupted. */
  readonly stats = {
    rounds: 0,
    periods: { verified: 0, repaired: 0, 'mismatch-unresolved': 0, pending: 0 } as Record<CheckStatus, number>,
    batchesRepaired: 0,
    errors: 0,
    /** Devices skipped because another receiver held their lease. */
    leaseBusy: 0,
  };
  /** This receiver as a lease owner: unique per process (a restarted receiver is a new owner). */
  readonly leaseOwner = `${hostname()}/${process.pid}/${randomBytes(6).toString('hex')}`;
  private readonly leases: DeviceLeases;
  private readonly leaseS: number;
  /** Reconciliations running at once, rounds and catch-ups together (sync.concurrency). */
  private readonly slots: WorkSlots;
  private task: ScheduledTask | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  readonly catchUps: Promise<RoundReport>[] = [];
  /** Reconciliations started and not yet settled: close() waits for them (their leases are released then). */
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly store: ConsumptionStore,
    private readonly o: SyncServiceOptions,
    private readonly log: Logger,
  ) {
    this.now = o.now ?? (() => Date.now() / 1000);
    this.slots = new WorkSlots(Math.max(1, o.concurrency));
    this.leases = o.leases ?? store.leases;
    this.leaseS = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  }

  /** Devices named by the hellos of the meters connected now. */
  get connectedDevices(): number {
    let n = 0;
    for (const c of this.clients) n += c.devices.length;
    return n;
  }

  /** Whether sync is served over TLS. */
  get tls(): boolean {
    return this.o.tls !== undefined;
  }

  /** Over TLS: new connections use these certificate settings; established ones keep theirs. */
  setSecureContext(options: tls.TlsOptions): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext(options);
  }

  /** Open connections, welcomed or not. */
  get openConnections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<number> {
    const server: net.Server = this.o.tls ? this.tlsServer(this.o.tls) : net.createServer((s) => this.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.warn({ err: e.message }, 'sync server error'));
    this.server = server;
    if (this.o.schedule !== false) this.startSchedule();
    const port = (server.address() as net.AddressInfo).port;
    this.log.info(
      { host: this.o.host, port, periodS: this.o.periodS },
      `sync service listening on ${this.o.tls ? 'tls' : 'tcp'} ${this.o.host}:${port}`,
    );
    return port;
  }

  /**
   * Sync over TLS: connections are capped from their first TCP byte (a peer that never completes a handshake holds
   * a slot until tls.handshake_timeout, never longer); over the cap they are closed without an error frame, which
   * could only be sent after a handshake.
   */
  private tlsServer(t: NonNullable<SyncServiceOptions['tls']>): tls.Server {
    const server = tls.createServer({ ...t.options, handshakeTimeout: t.handshakeTimeoutMs });
    const max = this.o.maxConnections ?? Infinity;
    server.on('connection', (raw: net.Socket) => {
      if (this.raw.size >= max) {
        this.refusedConnections++;
        raw.destroy();
        return;
      }
      this.raw.add(raw);
      raw.on('close', () => this.raw.delete(raw));
    });
    server.on('secureConnection', (s: tls.TLSSocket) => {
      const why = t.refuse(s);
      if (why === undefined) return this.onConnection(s);
      this.log.debug({ remote: s.remoteAddress, why }, 'sync TLS connection refused');
      s.destroy();
    });
    server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      this.log.debug({ err: err.message, remote: s.remoteAddress }, 'sync TLS handshake failed');
      // Node reports a handshake timeout here but leaves the socket open: closing it is ours to do.
      s.destroy();
    });
    return server;
  }

  private startSchedule(): void {
    const minutes = this.o.periodS / 60;
    const expr =
      Number.isInteger(minutes) && minutes < 60 && 60 % minutes === 0
        ? `*/${minutes} * * * *`
        : minutes === 60
          ? '0 * * * *'
          : undefined;
    const run = () => void this.runRound().catch((e) => this.log.error({ err: e }, 'sync round failed'));
    if (expr) this.task = cron.schedule(expr, run);
    else this.timer = setInterval(run, this.o.periodS * 1000);
  }

  private onConnection(socket: net.Socket): void {
    socket.setNoDelay(true);
    // A hello being checked is 'checking': nothing else may arrive meanwhile, not even another hello.
    let client: Client | 'checking' | undefined;
    const nonce = randomBytes(32).toString('base64url');
    const conn = new SyncConnection(
      socket,
      (m) => this.onMessage(conn, m, client, nonce, (c) => (client = c)),
      this.o.requestTimeoutMs,
    );
    const max = this.o.maxConnections ?? Infinity;
    if (this.sockets.size >= max) {
      // Once per 1000 refusals: a connection flood must not become a log flood.
      if (this.refusedConnections++ % 1000 === 0) {
        this.log.warn(
          { remote: socket.remoteAddress, max, refused: this.refusedConnections },
          'sync connection refused: too many connections',
        );
      }
      return conn.abort('EC_SYNC_BUSY', `${this.sockets.size} connections open (sync.max_connections = ${max})`);
    }
    this.sockets.add(socket);
    conn.send({ type: 'challenge', version: SYNC_PROTOCOL_VERSION, nonce, realm: this.o.auth.realm });
    const hello = setTimeout(() => {
      if (!client) conn.abort('EC_SYNC_NO_HELLO', 'no hello within 10 s');
    }, 10_000);
    // Meters are silent between rounds: the default idle timeout is twice the period.
    const idleS = this.o.idleTimeoutS ?? 2 * this.o.periodS;
    socket.setTimeout(idleS * 1000, () => conn.abort('EC_SYNC_IDLE', `nothing sent or received for ${idleS} s`));
    socket.on('close', () => {
      clearTimeout(hello);
      this.sockets.delete(socket);
      if (client && client !== 'checking') this.clients.delete(client);
    });
  }

  private onMessage(
    conn: SyncConnection,
    m: SyncMessage,
    client: Client | 'checking' | undefined,
    nonce: string,
    set: (c: Client | 'checking') => void,
  ): void {
    if (client === 'checking') {
      return conn.abort('EC_SYNC_UNEXPECTED', `${String(m.type).slice(0, 20)} frame before the welcome`);
    }
    if (!client && m.type !== 'hello') {
      return conn.abort('EC_SYNC_NO_HELLO', `the first frame must be a hello, not ${String(m.type).slice(0, 20)}`);
    }
    if (m.type === 'hello' && !client) {
      if (m.version !== SYNC_PROTOCOL_VERSION)
        return conn.abort(
          'EC_SYNC_VERSION',
          `protocol version ${m.version} not supported (server speaks ${SYNC_PROTOCOL_VERSION})`,
        );
      if (!isDeviceList(m.devices)) return conn.abort('EC_SYNC_BAD_HELLO', 'devices must be 1-10000 device ids');
      set('checking');
      void this.welcome(conn, { ...m, devices: [...new Set(m.devices)] }, nonce, set);
      return;
    }
    if (m.type === 'error') {
      this.log.warn({ code: peerText(m.code), message: peerText(m.message) }, 'sync client reported an error');
      return;
    }
    conn.abort('EC_SYNC_UNEXPECTED', `unexpected ${String(m.type).slice(0, 20)} frame`);
  }

  /** Checks the hello's proofs; welcomes the meter or closes the connection with EC_SYNC_AUTH_FAILED. */
  private async welcome(conn: SyncConnection, m: Hello, nonce: string, set: (c: Client) => void): Promise<void> {
    let proven: Set<string>;
    try {
      proven = await this.provenDevices(m, nonce);
    } catch (e) {
      if (e instanceof SyncProtocolError) {
        this.log.warn(
          { remote: conn.socket.remoteAddress, client: peerText(m.client), err: e.message },
          'sync hello refused',
        );
        return conn.abort(e.code, e.message);
      }
      this.log.warn({ err: (e as Error).message }, 'sync hello: credentials cannot be read');
      return conn.abort('EC_SYNC_BUSY', 'credentials cannot be read now; try again later');
    }
    if (conn.closed) return;
    const retentionS =
      Number.isFinite(m.retention_s) && m.retention_s > 0 ? Math.min(m.retention_s, 31 * 86_400) : 86_400;
    const helloFinal = Number.isSafeInteger(m.final) ? m.final : undefined;
    const c: Client = {
      conn,
      devices: m.devices,
      retentionS,
      proven,
      helloFinal,
      queue: Promise.resolve(),
      nextDevice: 0,
    };
    set(c);
    this.clients.add(c);
    conn.send({ type: 'welcome', version: SYNC_PROTOCOL_VERSION, period_s: this.o.periodS, proven: proven.size });
    this.log.info(
      {
        devices: m.devices.length,
        proven: proven.size,
        client: peerText(m.client),
        remote: conn.socket.remoteAddress,
      },
      'sync client connected',
    );
    if (this.o.catchUpOnConnect !== false) {
      this.catchUps.push(this.reconcileClient(c, 'catch-up'));
      // Only dropped from the list kept for callers to await; the catch-up itself runs on.
      if (this.catchUps.length > CATCH_UPS_KEPT) void this.catchUps.shift();
    }
  }

  /**
   * The hello's devices whose proof verifies against their stored credential. Throws
   * EC_SYNC_AUTH_FAILED for the first device that is not proven although it must be: auth is
   * required, or the device has credentials (then its secret is the only way to speak for it).
   */
  private async provenDevices(m: Hello, nonce: string): Promise<Set<string>> {
    const { required, credentials } = this.o.auth;
    const proofs: Record<string, unknown> =
      m.proofs && typeof m.proofs === 'object' && !Array.isArray(m.proofs) ? m.proofs : {};
    const proven = new Set<string>();
    for (const device of m.devices) {
      const proof = Object.hasOwn(proofs, device) ? proofs[device] : undefined;
      // Required and no proof: refused without a credential lookup (invented ids cost nothing).
      if (required && proof === undefined) throw notProven(device, 'no proof of its secret');
      const credential = await credentials.get(device);
      if (credential && proofMatches(proof, credential.ha1_sha256, nonce, device)) proven.add(device);
      else if (credential)
        throw notProven(device, proof === undefined ? 'no proof of its secret' : 'the proof does not verify');
      else if (required) throw notProven(device, 'no credentials on this server');
    }
    return proven;
  }

  /** One round: every connected client, every unverified period within its retention. */
  async runRound(): Promise<RoundReport> {
    const started = Date.now();
    const clients = [...this.clients];
    const reports: RoundReport[] = [];
    let next = 0;
    const worker = async () => {
      while (next < clients.length) reports.push(await this.reconcileClient(clients[next++]!, 'round'));
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.concurrency) }, worker));
    const report: RoundReport = {
      clients: clients.length,
      periods: reports.flatMap((r) => r.periods),
      errors: reports.flatMap((r) => r.errors),
      leased: reports.flatMap((r) => r.leased),
      ms: Date.now() - started,
    };
    const damaged = report.periods.filter((p) => p.status !== 'verified');
    this.stats.rounds++;
    this.log.info(
      {
        clients: report.clients,
        periods: report.periods.length,
        repairedPeriods: damaged.length,
        batchesRepaired: damaged.reduce((n, p) => n + p.repaired, 0),
        errors: report.errors.length,
        leased: report.leased.length,
        ms: report.ms,
      },
      'sync round done',
    );
    return report;
  }

  private reconcileClient(c: Client, why: string): Promise<RoundReport> {
    const run = c.queue.then(() => this.slots.run(() => this.reconcileNow(c, why)));
    c.queue = run.catch(() => undefined);
    const settled = c.queue.finally(() => this.running.delete(settled));
    this.running.add(settled);
    return run;
  }

  private async reconcileNow(c: Client, why: string): Promise<RoundReport> {
    const started = Date.now();
    const report: RoundReport = { clients: 1, periods: [], errors: [], leased: [], ms: 0 };
    const P = this.o.periodS;
    const lastEnd = Math.floor((this.now() - this.o.graceS) / P) * P;
    const firstStart = Math.floor((this.now() - c.retentionS) / P) * P + P;
    const peer = peerOver(c.conn);
    // The work one round (or one hello's catch-up) may cause: the rest waits for the next round.
    let budget = this.o.maxPeriodsPerRound ?? Infinity;
    const first = c.nextDevice % c.devices.length;
    for (let i = 0; i < c.devices.length; i++) {
      const d = (first + i) % c.devices.length;
      const device = c.devices[d]!;
      if (c.conn.closed) break;
      if (budget <= 0) {
        c.nextDevice = d;
        this.log.info(
          { why, maxPeriods: this.o.maxPeriodsPerRound, nextDevice: device },
          'sync: period budget spent; the rest waits for the next round',
        );
        break;
      }
      try {
        // Another receiver may hold this device's meter too (a meter connected to both, or moving):
        // whoever takes the lease reconciles; the other leaves the device to it for this round.
        if (!(await this.leases.acquire(device, this.leaseOwner, this.leaseS))) {
          report.leased.push(device);
          this.stats.leaseBusy++;
          this.log.debug({ device, why }, 'sync: another receiver holds the device lease; skipped');
          continue;
        }
      } catch (e) {
        report.errors.push({ device, error: (e as Error).message });
        this.stats.errors++;
        this.log.warn({ device, err: (e as Error).message, why }, 'sync: device lease cannot be taken; skipped');
        continue;
      }
      try {
        budget = await this.reconcileDevice(c, device, peer, { firstStart, lastEnd, budget, why }, report);
      } finally {
        await this.leases.release(device, this.leaseOwner).catch((e: unknown) => {
          // It expires by itself after sync.lease_seconds.
          this.log.warn({ device, err: (e as Error).message }, 'sync: device lease not released');
        });
      }
    }
    report.ms = Date.now() - started;
    return report;
  }

  /**
   * One device's unsettled periods, holding its lease (renewed before each period after the first):
   * what is settled is read only once the lease is held, so a period another receiver has just
   * reconciled is not done again. Returns the period budget left.
   */
  private async reconcileDevice(
    c: Client,
    device: string,
    peer: SyncPeer,
    w: { firstStart: number; lastEnd: number; budget: number; why: string },
    report: RoundReport,
  ): Promise<number> {
    const P = this.o.periodS;
    let budget = w.budget;
    try {
      const done = await this.settledPeriods(device, w.firstStart, w.lastEnd);
      const todo: number[] = [];
      for (let t = w.firstStart; t + P <= w.lastEnd && todo.length < budget; t += P) if (!done.has(t)) todo.push(t);
      if (todo.length > 1)
        this.log.info({ device, periods: todo.length, why: w.why }, 'sync: reconciling unverified periods');
      for (const [i, t] of todo.entries()) {
        if (c.conn.closed) break;
        if (i > 0 && !(await this.leases.renew(device, this.leaseOwner, this.leaseS))) {
          this.log.warn({ device, why: w.why }, 'sync: device lease lost (expired); the rest waits for the next round');
          break;
        }
        budget--;
        const r = await reconcilePeriod(this.store, peer, device, t, t + P, {
          // Data is never deleted on an anonymous peer's word.
          deleteExtraneous: this.o.deleteExtraneous && c.proven.has(device),
          fallbackFinal: () => c.helloFinal ?? this.now() - (this.o.unwatermarkedLagS ?? DEFAULT_UNWATERMARKED_LAG_S),
          now: this.now,
          log: this.log,
        });
        report.periods.push(r);
        this.stats.periods[r.status]++;
        // The periods after one the meter may still journal into are not final either: next round.
        if (r.beyondFinal) break;
        this.stats.batchesRepaired += r.repaired;
        if (r.status !== 'verified')
          this.log.info(
            {
              device,
              from: new Date(t * 1000).toISOString(),
              status: r.status,
              repaired: r.repaired,
              minutes: r.minutesDiffering,
            },
            'sync: period reconciled',
          );
      }
    } catch (e) {
      report.errors.push({ device, error: (e as Error).message });
      this.stats.errors++;
      this.log.warn(
        { device, err: (e as Error).message, why: w.why },
        'sync: reconciliation interrupted; the period stays pending',
      );
    }
    return budget;
  }

  /**
   * Period starts in [from, to) already verified or repaired for this device. A check recorded
   * later than the clock says it is now was made while the clock was ahead: it may have "verified"
   * periods that had not happened yet (empty on both sides then), so it does not count.
   */
  private async settledPeriods(device: string, from: number, to: number): Promise<Set<number>> {
    const done = new Set<number>();
    const nowMs = this.now() * 1000;
    for (let t = from; t < to; t += MAX_RANGE_SECONDS) {
      for (const c of await this.store.readIntervalChecks({
        device_id: device,
        from: t,
        to: Math.min(to, t + MAX_RANGE_SECONDS),
      })) {
        if (c.interval_seconds !== this.o.periodS || (c.status !== 'verified' && c.status !== 'repaired')) continue;
        if (c.check_time > nowMs) continue;
        done.add(compactToEpochSecond(c.ec_date + c.ec_time));
      }
    }
    return done;
  }

  async close(): Promise<void> {
    await this.task?.stop();
    if (this.timer) clearInterval(this.timer);
    for (const c of this.clients) c.conn.close();
    // Connections that never said hello are not clients: destroy them, there is nothing to finish.
    const welcomed = new Set([...this.clients].map((c) => c.conn.socket));
    for (const s of this.sockets) if (!welcomed.has(s)) s.destroy();
    // TLS handshakes in progress: nothing to finish either; welcomed connections get a second to close.
    setTimeout(() => {
      for (const s of this.raw) s.destroy();
    }, 1000).unref();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    // A reconciliation cut short by the closed connections still releases its device's lease, in the
    // store the server closes after this: else a receiver restarted at once finds the lease held by its
    // former self and skips the device until the lease expires (sync.lease_seconds, 120 s).
    await Promise.allSettled([...this.running]);
  }
}

/** The SyncPeer a reconciliation talks to, over one client connection. Answers are shape-checked. */
function peerOver(conn: SyncConnection): SyncPeer {
  const list = async <T>(
    request: Parameters<SyncConnection['request']>[0],
    field: string,
    also?: (answer: Record<string, unknown>) => void,
  ): Promise<T[]> => {
    const answer = (await conn.request(request)) as unknown as Record<string, unknown>;
    also?.(answer);
    const value = answer[field];
    if (answer.type !== request.type || !Array.isArray(value)) {
      throw new SyncProtocolError('EC_SYNC_BAD_ANSWER', `answer to ${request.type} lacks the ${field} list`);
    }
    return value as T[];
  };
  return {
    digest: async (device, from, to, interval) => {
      let final: unknown;
      const intervals = await list<IntervalSummary>(
        { type: 'digest', device, from, to, interval },
        'intervals',
        (a) => {
          final = a.final;
        },
      );
      return { intervals, ...(typeof final === 'number' ? { final } : {}) };
    },
    summaries: (device, from, to) => list<WireSummary>({ type: 'summaries', device, from, to }, 'summaries'),
    batches: (device, keys: BatchKey[]) => list<WireBatch>({ type: 'batches', device, keys }, 'batches'),
  };
}

function notProven(device: string, why: string): SyncProtocolError {
  return new SyncProtocolError('EC_SYNC_AUTH_FAILED', `device ${device}: ${why}`);
}
