import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, REPO } from './server-process.js';

/** One answered attempt of a batch, from ec-client's trace line 'answer'. */
export interface MeterAnswer {
  device: string;
  second: number;
  status: number;
  server: string;
  /** Wall-clock ms of the log line. */
  at: number;
}

/**
 * A real ec-client process (the product's meter), run with --log-level trace so that every answered
 * attempt is a JSON line: the test learns which batches were acknowledged, by which receiver, and when
 * the 503s came, from the meter itself. SIGTERM ends its stream (it then lingers for sync, --linger);
 * a second SIGTERM ends the linger and it exits with its summary.
 */
export class MeterProcess {
  private readonly child: ChildProcess;
  private out = '';
  private partial = '';
  readonly answers: MeterAnswer[] = [];
  /** device -> epoch seconds answered 200. */
  readonly acked = new Map<string, Set<number>>();
  readonly exited: Promise<number | null>;
  private streamDone = false;
  private waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN('ec-client'), '--log-level', 'trace', ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => this.onData(d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  get ackedCount(): number {
    let n = 0;
    for (const s of this.acked.values()) n += s.size;
    return n;
  }

  /** Answers with this status (e.g. 503) at or after `since` (wall-clock ms). */
  countStatus(status: number, since = 0, until = Infinity): number {
    return this.answers.filter((a) => a.status === status && a.at >= since && a.at < until).length;
  }

  /** Times the meter's answers came from another receiver than the answer before. */
  get switches(): number {
    let n = 0;
    for (let i = 1; i < this.answers.length; i++) if (this.answers[i]!.server !== this.answers[i - 1]!.server) n++;
    return n;
  }

  /** Everything it printed that is not an 'answer' line (for failure messages). */
  output(): string {
    return this.out;
  }

  /** Ends the stream (SIGTERM) and resolves once every batch in flight has had its last answer. */
  async stopStream(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.until(() => this.streamDone);
  }

  /** Ends the linger (a second SIGTERM) and resolves with its exit code. */
  async close(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private onData(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      if (line.includes('"msg":"answer"')) {
        const j = JSON.parse(line) as { device: string; second: number; status: number; server: string; time: string };
        this.answers.push({
          device: j.device,
          second: j.second,
          status: j.status,
          server: j.server,
          at: Date.parse(j.time),
        });
        if (j.status === 200) {
          let s = this.acked.get(j.device);
          if (!s) this.acked.set(j.device, (s = new Set()));
          s.add(j.second);
        }
        continue;
      }
      this.out += line + '\n';
      if (line.includes('"msg":"stream done"')) this.streamDone = true;
    }
    for (const w of this.waiters.splice(0)) w();
  }

  private until(done: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => (done() ? resolve() : this.waiters.push(check));
      void this.exited.then(() => (done() ? resolve() : reject(new Error(`ec-client exited:\n${this.out}`))));
      check();
    });
  }
}
