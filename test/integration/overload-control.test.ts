import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch } from '../../src/domain/batch.js';
import { SipRequestError } from '../../src/errors.js';
import { GroupCommitter } from '../../src/ingest/group-commit.js';
import { InlineIngestSink } from '../../src/ingest/ingest-sink.js';
import { LoopBusy } from '../../src/ingest/loop-busy.js';
import { AdaptiveLimit } from '../../src/store/adaptive-limit.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch, receivedOf } from '../helpers/batches.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A real SQLite store whose commits are slowed by `delayMs` (the injected fault: a disk or a node
 * that takes that long per commit, which cannot be produced for real on demand).
 */
class SlowStore extends SqliteStore {
  delayMs = 0;
  commits = 0;
  override async upsertBatches(batches: readonly Batch[]): Promise<void> {
    if (this.delayMs > 0) await sleep(this.delayMs);
    await super.upsertBatches(batches);
    this.commits++;
  }
}

/**
 * The same real store written the way the Cassandra store writes: groups handed over at once
 * (pipelined) and their batches written concurrently under a write limit, each group resolving when
 * its own writes do. Every `slowEvery`-th group takes `slowMs` (a write in the store's latency
 * tail: a replica's GC pause, a compaction), the others `delayMs`.
 */
class ConcurrentSlowStore extends SlowStore {
  readonly writeLimit = new AdaptiveLimit({ initial: 64, min: 64, max: 64, targetMs: 50 });
  slowEvery = 0;
  slowMs = 0;
  private groups = 0;
  constructor(options: ConstructorParameters<typeof SqliteStore>[0]) {
    super(options);
    this.pipelined = true;
  }
  override async upsertBatches(batches: readonly Batch[]): Promise<void> {
    const slow = this.slowEvery > 0 && ++this.groups % this.slowEvery === 0;
    await Promise.all(
      batches.map((b) =>
        this.writeLimit.run(async () => {
          await sleep(slow ? this.slowMs : this.delayMs);
          await SqliteStore.prototype.upsertBatches.call(this, [b]);
        }),
      ),
    );
    this.commits++;
  }
}

interface Offered {
  accepted: number;
  refused: SipRequestError[];
  /** Refusals answered only after a commit finished (they should all come at once). */
  refusedLate: number;
  stored: Promise<unknown>;
}

const MAX_WAIT_MS = 250;

/**
 * Overload control tied to SIP's T1: a batch that would wait more than ingest.max_wait_ms for its
 * commit is answered 503 at once, so that a slow store sheds load instead of growing a queue that
 * UDP meters would retransmit into. Nothing accepted is dropped.
 */
describe('overload control: expected commit wait (real SQLite, slowed commits)', function () {
  this.timeout(60_000);
  let dir: string;
  let store: SlowStore;
  let committer: GroupCommitter;
  let reports: [string, number][];
  let second = 1_700_000_000;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-overload-'));
    // NORMAL: the commit time under test is the injected delay, not this disk's fsync.
    store = new SlowStore({ dir, synchronous: 'NORMAL' });
    await store.open();
    reports = [];
    committer = new GroupCommitter(new InlineIngestSink(store), {
      maxBatches: 10,
      maxQueued: 100_000,
      maxQueuedBytes: 1 << 30,
      maxWaitMs: MAX_WAIT_MS,
      onOverload: (reason, refused) => reports.push([reason, refused]),
    });
  });
  afterEach(async () => {
    await committer.drain();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Submits `perTick` batches every `tickMs` for `ticks` ticks, as meters would. */
  async function offer(perTick: number, tickMs: number, ticks: number): Promise<Offered> {
    const out: Offered = { accepted: 0, refused: [], refusedLate: 0, stored: Promise.resolve() };
    const accepted: Promise<void>[] = [];
    for (let t = 0; t < ticks; t++) {
      for (let i = 0; i < perTick; i++) {
        const commitsAtSubmit = store.commits;
        const p = committer.submit(receivedOf(makeBatch('meter', second++)));
        p.then(
          () => undefined,
          (e: unknown) => {
            if (!(e instanceof SipRequestError)) throw e;
            out.refused.push(e);
            if (store.commits !== commitsAtSubmit) out.refusedLate++;
          },
        );
        accepted.push(
          p.then(
            () => void out.accepted++,
            () => undefined,
          ),
        );
      }
      await sleep(tickMs);
    }
    out.stored = Promise.all(accepted);
    await out.stored;
    return out;
  }

  async function rows(): Promise<number> {
    return (await store.readSummaries({ device_id: 'meter', from: 1_700_000_000, to: second })).length;
  }

  it('accepts everything while commits are fast (the wait stays far under the bound)', async () => {
    store.delayMs = 2;
    const r = await offer(10, 10, 100); // ~1,000 batches/s for about a second
    expect(r.refused, 'no 503').to.have.length(0);
    expect(r.accepted).to.equal(1000);
    expect(await rows()).to.equal(1000);
  });

  it('refuses at once with 503 beyond the bound, stores every accepted batch, accepts after recovery', async () => {
    // 100 ms per commit of at most 10 batches: the store takes 100 batches/s; 500/s are offered.
    store.delayMs = 100;
    const started = performance.now();
    const slow = await offer(10, 20, 100);
    const seconds = (performance.now() - started) / 1000;
    expect(slow.refused.length, 'the excess is refused').to.equal(1000 - slow.accepted);
    expect(slow.refusedLate, 'every 503 came at once, not after a commit').to.equal(0);
    for (const e of slow.refused) {
      expect(e.status).to.equal(503);
      expect(e.reason).to.match(/^Server overloaded: expected commit wait \d+ ms exceeds 250 ms$/);
    }
    expect(await rows(), 'every accepted batch is stored').to.equal(slow.accepted);
    // What was accepted is what the store could take meanwhile (100/s), plus the bound's worth and
    // what came before its rate was first measured: not the offered 1,000.
    expect(slow.accepted).to.be.at.most(100 * seconds + 150);
    expect(committer.drainRatePerSecond, "the drain rate measured is the store's 100/s").to.be.within(50, 110);
    // Reported for the log at most once a second (the run took about 2 s), every refusal counted once.
    expect(reports.length).to.be.within(1, 4);
    expect(reports[0]![0]).to.match(/^expected commit wait \d+ ms exceeds 250 ms$/);
    expect(reports.reduce((n, [, refused]) => n + refused, 0)).to.be.within(reports.length, slow.refused.length);

    store.delayMs = 0;
    await committer.drain();
    const recovered = await offer(10, 20, 50);
    expect(recovered.refused, 'no 503 once commits are fast again').to.have.length(0);
    expect(committer.stats.overloaded).to.equal(slow.refused.length);
    expect(await rows()).to.equal(slow.accepted + recovered.accepted);
  });

  it('refuses new batches once a hung store has not finished a commit for longer than the bound', async () => {
    store.delayMs = 1000;
    const started = performance.now();
    const r = await offer(2, 20, 25); // half a second of 100/s against a store that finishes nothing for 1 s
    expect(r.refused.length).to.be.greaterThan(10);
    expect(r.refused[0]!.reason).to.match(/^Server overloaded: expected commit wait (\d+) ms exceeds 250 ms$/);
    const firstWait = Number(/wait (\d+) ms/.exec(r.refused[0]!.reason)![1]);
    expect(firstWait).to.be.greaterThan(MAX_WAIT_MS);
    expect(r.refusedLate).to.equal(0);
    expect(await rows()).to.equal(r.accepted);
    expect(performance.now() - started).to.be.greaterThan(1000); // sanity: the accepted ones waited for the hung commit
  });

  describe('a store that writes groups concurrently (as Cassandra does)', () => {
    let concurrent: ConcurrentSlowStore;
    let committer2: GroupCommitter;
    beforeEach(async () => {
      concurrent = new ConcurrentSlowStore({ dir: join(dir, 'concurrent'), synchronous: 'NORMAL' });
      await concurrent.open();
    });
    afterEach(async () => {
      await committer2.drain();
      await concurrent.close();
    });

    /** Offers `perTick` batches every `tickMs` for `ticks` ticks; resolves once all are answered. */
    async function offerTo(perTick: number, tickMs: number, ticks: number) {
      const answers: Promise<SipRequestError | undefined>[] = [];
      for (let t = 0; t < ticks; t++) {
        for (let i = 0; i < perTick; i++) {
          answers.push(
            committer2.submit(receivedOf(makeBatch('meter', second++))).then(
              () => undefined,
              (e: unknown) => {
                if (!(e instanceof SipRequestError)) throw e;
                return e;
              },
            ),
          );
        }
        await sleep(tickMs);
      }
      const all = await Promise.all(answers);
      return { refused: all.filter((e) => e !== undefined), accepted: all.filter((e) => e === undefined).length };
    }

    function committerFor(sink: InlineIngestSink): GroupCommitter {
      return new GroupCommitter(sink, {
        maxBatches: 10,
        maxQueued: 100_000,
        maxQueuedBytes: 1 << 30,
        maxWaitMs: MAX_WAIT_MS,
      });
    }

    it('refuses nothing for a slow write in its tail: the next groups go out beside it', async () => {
      concurrent.delayMs = 2;
      concurrent.slowEvery = 25;
      concurrent.slowMs = 400;
      committer2 = committerFor(new InlineIngestSink(concurrent));
      expect(new InlineIngestSink(concurrent).concurrent).to.equal(true);
      const r = await offerTo(4, 10, 100); // ~400 batches/s for a second; every 25th group takes 400 ms
      expect(r.refused, 'no 503').to.have.length(0);
      expect(await concurrent.readSummaries({ device_id: 'meter', from: 1_700_000_000, to: second })).to.have.length(
        r.accepted,
      );
    });

    // A single meter (or a quiet fleet) sends less often than a write in the slow tail takes: nothing
    // else finishes meanwhile, so "time since the store last finished a group" grows past the bound.
    it('a sparse sender is not refused while one slow write is out: its next batch goes out beside it', async () => {
      concurrent.delayMs = 2;
      concurrent.slowEvery = 3;
      concurrent.slowMs = 1000;
      committer2 = committerFor(new InlineIngestSink(concurrent));
      const r = await offerTo(1, 300, 10); // 1 batch every 300 ms; every third write takes 1 s
      expect(r.refused, 'no 503').to.have.length(0);
      expect(r.accepted).to.equal(10);
    });

    it('the same sender is refused when the groups are counted as written in turn (the rule before)', async () => {
      concurrent.delayMs = 2;
      concurrent.slowEvery = 3;
      concurrent.slowMs = 1000;
      const sink = new InlineIngestSink(concurrent);
      Object.defineProperty(sink, 'concurrent', { value: false });
      committer2 = committerFor(sink);
      const r = await offerTo(1, 300, 10);
      expect(r.refused.length, 'batches refused behind the slow write').to.be.greaterThan(0);
    });

    it('still refuses at once when every group it holds is hung', async () => {
      concurrent.delayMs = 1000;
      committer2 = committerFor(new InlineIngestSink(concurrent));
      const r = await offerTo(2, 20, 25); // half a second of 100/s against writes that take 1 s
      expect(r.refused.length).to.be.greaterThan(10);
      expect(r.refused[0]!.reason).to.match(/^Server overloaded: expected commit wait \d+ ms exceeds 250 ms$/);
    });
  });

  describe("the receiver's own event loop (ingest.max_loop_busy)", () => {
    /** Keeps this thread's event loop busy for `ms`, in slices of 20 ms with a turn of the loop between. */
    async function spin(ms: number): Promise<void> {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const slice = performance.now() + 20;
        while (performance.now() < slice) {
          /* real CPU work on the loop: what a flood of datagrams does to it */
        }
        await new Promise((r) => setImmediate(r));
      }
    }

    it('admits a shrinking share of new batches while the loop is saturated, all again once it has room', async () => {
      const loop = new LoopBusy(90, { windowMs: 100 });
      loop.start();
      const guarded = new GroupCommitter(new InlineIngestSink(store), {
        maxBatches: 10,
        maxQueued: 100_000,
        maxQueuedBytes: 1 << 30,
        maxWaitMs: MAX_WAIT_MS,
        loopRefusal: () => loop.refusal(),
      });
      const offer30 = async () => {
        const answers = await Promise.allSettled(
          Array.from({ length: 30 }, () => guarded.submit(receivedOf(makeBatch('meter', second++)))),
        );
        return answers.flatMap((a): unknown[] => (a.status === 'rejected' ? [a.reason] : []));
      };
      try {
        expect(await offer30(), 'an idle loop: everything admitted').to.have.length(0);
        await spin(450); // four or five saturated windows: a cut to 70 % on every second one
        expect(loop.lastPct).to.be.at.least(90);
        expect(loop.admittedPct).to.be.at.most(70);
        const share = loop.admittedPct / 100;
        const refused = await offer30();
        // Spread evenly: of 30, (1 - share) x 30 refused, not all and not none.
        expect(refused.length).to.be.within(Math.floor((1 - share) * 30) - 1, Math.ceil((1 - share) * 30) + 1);
        expect(refused.length).to.be.within(1, 29);
        for (const e of refused) {
          expect(e).to.be.instanceOf(SipRequestError);
          expect((e as SipRequestError).status).to.equal(503);
          expect((e as SipRequestError).reason).to.match(
            /^Server overloaded: event loop busy \d+ % of the last 100 ms \(limit 90 %\): admitting \d+ % of batches$/,
          );
        }
        await sleep(2500); // windows with room: x1.25 + 5 % each (at most 8 bring 5 % back to 100 %)
        expect(loop.admittedPct).to.equal(100);
        expect(await offer30(), 'recovered: everything admitted').to.have.length(0);
        expect(await rows()).to.equal(60 + (30 - refused.length));
      } finally {
        loop.stop();
        await guarded.drain();
      }
    });

    it('shares the cut max-min fairly by sender: a flooder is cut, a meter below its share keeps all', async () => {
      const loop = new LoopBusy(90, { windowMs: 100 });
      loop.start();
      const refused = { flooder: 0, meter: 0, flooderOffered: 0, meterOffered: 0 };
      try {
        // 800 ms of a saturated loop: every 20-ms slice the flooder sends 40 batches, the meter one every 100 ms.
        const end = performance.now() + 800;
        let slice = 0;
        while (performance.now() < end) {
          const until = performance.now() + 20;
          while (performance.now() < until) {
            /* real CPU work on the loop */
          }
          for (let i = 0; i < 40; i++) {
            refused.flooderOffered++;
            if (loop.refusal('device flooder')) refused.flooder++;
          }
          if (slice++ % 5 === 0) {
            refused.meterOffered++;
            if (loop.refusal('device meter')) refused.meter++;
          }
          await new Promise((r) => setImmediate(r));
        }
        expect(loop.admittedPct, 'the loop was saturated: the share was cut').to.be.at.most(50);
        expect(refused.flooder, 'much of the flood refused').to.be.greaterThan(refused.flooderOffered / 5);
        expect(refused.meterOffered).to.be.at.least(6);
        expect(refused.meter, 'the meter, below its fair share, refused nothing').to.equal(0);
        // A sender new in this window gets the fair level (under half the flooder's 200 a window), then the
        // overall share: not a way around the cut.
        let fresh = 0;
        for (let i = 0; i < 300; i++) if (loop.refusal('device newcomer')) fresh++;
        expect(fresh, 'a newcomer sending a flood is cut too').to.be.greaterThan(50);
      } finally {
        loop.stop();
      }
    });

    it('cuts at the first saturated window when the UDP receive queue grows, not before it', async () => {
      let queued = 0;
      // The kernel's queue as udp-backlog.ts reads it (tested on a real socket in udp-backlog.test.ts).
      const growing = new LoopBusy(90, { windowMs: 100, receiveBacklog: () => (queued += 0.05) });
      const blind = new LoopBusy(90, { windowMs: 100 });
      const idleQueue = new LoopBusy(90, { windowMs: 100, receiveBacklog: () => 0 });
      for (const l of [growing, blind, idleQueue]) l.start();
      try {
        await spin(130); // one saturated window; stopped before a second is measured
        const pct = [growing, blind, idleQueue].map((l) => l.admittedPct);
        expect(pct[0], 'falling behind: cut at once').to.equal(70);
        expect(pct[1], 'one busy window is a burst').to.equal(100);
        expect(pct[2], 'busy but nothing queued: a burst too').to.equal(100);
      } finally {
        for (const l of [growing, blind, idleQueue]) l.stop();
      }
    });

    it('with a readable UDP queue, saturated windows cut only while datagrams wait there', async () => {
      // The loop keeps up: utilization alone (a thread waiting for a core counts as busy) is no reason.
      const keepingUp = new LoopBusy(90, { windowMs: 100, receiveBacklog: () => 0.01 });
      // Datagrams wait (above BACKLOG_MIN, 2 %) but the queue does not grow: the two-window rule cuts.
      const waiting = new LoopBusy(90, { windowMs: 100, receiveBacklog: () => 0.05 });
      // No queue to read (not Linux, or TCP only): utilization decides, as before.
      const blind = new LoopBusy(90, { windowMs: 100 });
      const all = [keepingUp, waiting, blind];
      for (const l of all) l.start();
      try {
        await spin(450); // four or five saturated windows
        expect(keepingUp.lastPct).to.be.at.least(90);
        expect(keepingUp.admittedPct, 'busy, nothing queued: nothing refused').to.equal(100);
        expect(keepingUp.refusal()).to.equal(undefined);
        expect(waiting.admittedPct, 'busy with datagrams waiting: cut').to.be.at.most(70);
        expect(blind.admittedPct, 'busy, queue unknown: cut').to.be.at.most(70);
      } finally {
        for (const l of all) l.stop();
      }
    });

    it('grows a cut share back while the queue stays empty, though the loop is busy', async () => {
      let queued = 0.03; // over BACKLOG_MIN and growing from 0: the first saturated window cuts
      const loop = new LoopBusy(90, { windowMs: 100, receiveBacklog: () => queued });
      loop.start();
      try {
        await spin(130);
        expect(loop.admittedPct, 'cut at once').to.equal(70);
        queued = 0.01; // the loop keeps up from now on, still saturated (a thread waiting for a core)
        await spin(320);
        expect(loop.lastPct).to.be.at.least(90);
        expect(loop.admittedPct, 'probing back up by the step, not held at the cut').to.be.within(75, 95);
      } finally {
        loop.stop();
      }
    });

    it('never refuses with ingest.max_loop_busy=0', async () => {
      const off = new LoopBusy(0, { windowMs: 100 });
      off.start();
      await spin(250);
      expect(off.refusal()).to.equal(undefined);
      off.stop();
    });
  });

  it('is off with ingest.max_wait_ms=0: only the queue bounds apply', async () => {
    const off = new GroupCommitter(new InlineIngestSink(store), {
      maxBatches: 10,
      maxQueued: 100_000,
      maxQueuedBytes: 1 << 30,
      maxWaitMs: 0,
    });
    store.delayMs = 300;
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, () => off.submit(receivedOf(makeBatch('meter', second++)))),
    );
    expect(results.filter((x) => x.status === 'rejected')).to.have.length(0);
    await off.drain();
  });
});
