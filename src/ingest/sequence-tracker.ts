/**
 * Last X-EC-Seq seen per device, to log gaps the moment they happen (sync repairs them later).
 * Bounded: the least recently seen devices are forgotten first.
 */
export class SequenceTracker {
  private readonly last = new Map<string, number>();
  gaps = 0;

  constructor(private readonly maxDevices: number) {}

  /** Records seq; returns the expected number when seq skipped ahead of it. */
  observe(device: string, seq: number): { expected: number } | undefined {
    const prev = this.last.get(device);
    this.last.delete(device);
    this.last.set(device, prev === undefined ? seq : Math.max(prev, seq));
    if (this.last.size > this.maxDevices) this.last.delete(this.last.keys().next().value!);
    if (prev !== undefined && seq > prev + 1) {
      this.gaps++;
      return { expected: prev + 1 };
    }
    return undefined;
  }
}
