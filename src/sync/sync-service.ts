import net from 'node:net';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { compactToEpochSecond, type BatchKey } from '../domain/batch.js';
import { SyncProtocolError } from '../errors.js';
import type { ConsumptionStore, IntervalSummary } from '../store/consumption-store.js';
import { MAX_RANGE_SECONDS } from '../store/consumption-store.js';
import { reconcilePeriod, type PeriodResult, type SyncPeer } from './reconciler.js';
import { peerText } from './peer-text.js';
import { SyncConnection } from './sync-connection.js';
import { WorkSlots } from './work-slots.js';
import {
  isDeviceList,
  SYNC_PROTOCOL_VERSION,
  type SyncMessage,
  type WireBatch,
  type WireSummary,
} from './sync-protocol.js';

export interface SyncServiceOptions {
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
}

/** Catch-ups kept for tests to await; older ones are dropped (every hello adds one). */
const CATCH_UPS_KEPT = 100;

interface Client {
  conn: SyncConnection;
  devices: string[];
  retentionS: number;
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
  /** Connections refused at the cap (sync.max_connections) so far. */
  refusedConnections = 0;
  /** Reconciliations running at once, rounds and catch-ups together (sync.concurrency). */
  private readonly slots: WorkSlots;
  private task: ScheduledTask | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  readonly catchUps: Promise<RoundReport>[] = [];

  constructor(
    private readonly store: ConsumptionStore,
    private readonly o: SyncServiceOptions,
    private readonly log: Logger,
  ) {
    this.now = o.now ?? (() => Date.now() / 1000);
    this.slots = new WorkSlots(Math.max(1, o.concurrency));
  }

  /** Open connections, welcomed or not. */
  get openConnections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<number> {
    const server = net.createServer((s) => this.onConnection(s));
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
      `sync service listening on tcp ${this.o.host}:${port}`,
    );
    return port;
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
    let client: Client | undefined;
    const conn = new SyncConnection(
      socket,
      (m) => this.onMessage(conn, m, client, (c) => (client = c)),
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
    const hello = setTimeout(() => {
      if (!client) conn.abort('EC_SYNC_NO_HELLO', 'no hello within 10 s');
    }, 10_000);
    // Meters are silent between rounds: the default idle timeout is twice the period.
    const idleS = this.o.idleTimeoutS ?? 2 * this.o.periodS;
    socket.setTimeout(idleS * 1000, () => conn.abort('EC_SYNC_IDLE', `nothing sent or received for ${idleS} s`));
    socket.on('close', () => {
      clearTimeout(hello);
      this.sockets.delete(socket);
      if (client) this.clients.delete(client);
    });
  }

  private onMessage(conn: SyncConnection, m: SyncMessage, client: Client | undefined, set: (c: Client) => void): void {
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
      const retentionS =
        Number.isFinite(m.retention_s) && m.retention_s > 0 ? Math.min(m.retention_s, 31 * 86_400) : 86_400;
      const c: Client = { conn, devices: m.devices, retentionS, queue: Promise.resolve(), nextDevice: 0 };
      set(c);
      this.clients.add(c);
      conn.send({ type: 'welcome', version: SYNC_PROTOCOL_VERSION, period_s: this.o.periodS });
      this.log.info(
        { devices: m.devices.length, client: peerText(m.client), remote: conn.socket.remoteAddress },
        'sync client connected',
      );
      if (this.o.catchUpOnConnect !== false) {
        this.catchUps.push(this.reconcileClient(c, 'catch-up'));
        // Only dropped from the list kept for callers to await; the catch-up itself runs on.
        if (this.catchUps.length > CATCH_UPS_KEPT) void this.catchUps.shift();
      }
      return;
    }
    if (m.type === 'error') {
      this.log.warn({ code: peerText(m.code), message: peerText(m.message) }, 'sync client reported an error');
      return;
    }
    conn.abort('EC_SYNC_UNEXPECTED', `unexpected ${String(m.type).slice(0, 20)} frame`);
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
      ms: Date.now() - started,
    };
    const damaged = report.periods.filter((p) => p.status !== 'verified');
    this.log.info(
      {
        clients: report.clients,
        periods: report.periods.length,
        repairedPeriods: damaged.length,
        batchesRepaired: damaged.reduce((n, p) => n + p.repaired, 0),
        errors: report.errors.length,
        ms: report.ms,
      },
      'sync round done',
    );
    return report;
  }

  private reconcileClient(c: Client, why: string): Promise<RoundReport> {
    const run = c.queue.then(() => this.slots.run(() => this.reconcileNow(c, why)));
    c.queue = run.catch(() => undefined);
    return run;
  }

  private async reconcileNow(c: Client, why: string): Promise<RoundReport> {
    const started = Date.now();
    const report: RoundReport = { clients: 1, periods: [], errors: [], ms: 0 };
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
        const done = await this.settledPeriods(device, firstStart, lastEnd);
        const todo: number[] = [];
        for (let t = firstStart; t + P <= lastEnd && todo.length < budget; t += P) if (!done.has(t)) todo.push(t);
        if (todo.length > 1)
          this.log.info({ device, periods: todo.length, why }, 'sync: reconciling unverified periods');
        for (const t of todo) {
          if (c.conn.closed) break;
          budget--;
          const r = await reconcilePeriod(this.store, peer, device, t, t + P, {
            deleteExtraneous: this.o.deleteExtraneous,
            now: this.now,
            log: this.log,
          });
          report.periods.push(r);
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
        this.log.warn(
          { device, err: (e as Error).message, why },
          'sync: reconciliation interrupted; the period stays pending',
        );
      }
    }
    report.ms = Date.now() - started;
    return report;
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
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** The SyncPeer a reconciliation talks to, over one client connection. Answers are shape-checked. */
function peerOver(conn: SyncConnection): SyncPeer {
  const list = async <T>(request: Parameters<SyncConnection['request']>[0], field: string): Promise<T[]> => {
    const answer = (await conn.request(request)) as unknown as Record<string, unknown>;
    const value = answer[field];
    if (answer.type !== request.type || !Array.isArray(value)) {
      throw new SyncProtocolError('EC_SYNC_BAD_ANSWER', `answer to ${request.type} lacks the ${field} list`);
    }
    return value as T[];
  };
  return {
    digest: (device, from, to, interval) =>
      list<IntervalSummary>({ type: 'digest', device, from, to, interval }, 'intervals'),
    summaries: (device, from, to) => list<WireSummary>({ type: 'summaries', device, from, to }, 'summaries'),
    batches: (device, keys: BatchKey[]) => list<WireBatch>({ type: 'batches', device, keys }, 'batches'),
  };
}
