import { TwoGenerationMap } from '../util/two-generation-map.js';

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

/**
 * Last X-EC-Seq seen per device, to log gaps the moment they happen (sync repairs them later).
 * Bounded: devices not seen for a while are forgotten first (util/two-generation-map.ts; a stream
 * of new devices, as in the benchmarks, must not slow the receive loop).
 */
export class SequenceTracker {
  private readonly last: TwoGenerationMap<string, number>;

  constructor(maxDevices: number) {
    this.last = new TwoGenerationMap(maxDevices);
  }

  /** Records seq; returns the expected number when seq skipped ahead of it. */
  observe(device: string, seq: number): { expected: number } | undefined {
    const prev = this.last.get(device);
    const late = prev !== undefined && seq <= prev && prev - seq <= SEQ_REORDER_WINDOW;
    this.last.set(device, late ? prev : seq);
    if (prev !== undefined && seq > prev + 1) return { expected: prev + 1 };
    return undefined;
  }
}
