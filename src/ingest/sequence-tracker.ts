/**
 * Last X-EC-Seq seen per device, to log gaps the moment they happen (sync repairs them later).
 * Bounded: devices not seen for a while are forgotten first.
 *
 * Two generations rather than one Map kept in LRU order: evicting a Map's first key one at a time
 * leaves tombstones at its head that every later eviction walks again, which made each request
 * cost O(devices) once the bound was reached (a stream of new devices, as in the benchmarks, slowed
 * the receive loop to a crawl). Here the older generation is dropped whole.
 */
/**
 * How far below the highest number seen a sequence number may come and still count as a late
 * (reordered or retransmitted) batch. Further below, the device restarted its numbering, or the
 * highest number was forged: tracking starts again from the new number. Without this, one forged
 * X-EC-Seq of 999999999999999 stayed the highest forever and silenced every later gap of that
 * device. A forged number at most this far ahead silences gaps only until the device's own
 * numbers pass it. 1000 batches: over 16 minutes of a meter sending every second, far more than
 * any reordering (retransmissions stop after 32 s).
 */
export const SEQ_REORDER_WINDOW = 1000;

export class SequenceTracker {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private readonly generationMax: number;
  gaps = 0;

  constructor(maxDevices: number) {
    this.generationMax = Math.max(1, Math.floor(maxDevices / 2));
  }

  /** Devices remembered (at most maxDevices). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Records seq; returns the expected number when seq skipped ahead of it. */
  observe(device: string, seq: number): { expected: number } | undefined {
    let prev = this.current.get(device);
    if (prev === undefined) {
      prev = this.previous.get(device);
      if (prev !== undefined) this.previous.delete(device);
      if (this.current.size >= this.generationMax) {
        this.previous = this.current;
        this.current = new Map();
      }
    }
    const late = prev !== undefined && seq <= prev && prev - seq <= SEQ_REORDER_WINDOW;
    this.current.set(device, late ? prev! : seq);
    if (prev !== undefined && seq > prev + 1) {
      this.gaps++;
      return { expected: prev + 1 };
    }
    return undefined;
  }
}
