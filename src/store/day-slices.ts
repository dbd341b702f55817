import { epochSecondToParts } from '../domain/batch.js';
import { MAX_RANGE_SECONDS, type DeviceRange } from './consumption-store.js';

/** One UTC day's part of a range: ec_date plus the [fromTime, toTime) bounds on ec_time. */
export interface DaySlice {
  ec_date: string;
  fromTime: string;
  /** Exclusive; '240000' for "to the end of the day". */
  toTime: string;
}

/**
 * Splits a range at UTC midnights so that every read names (device, date) and compares ec_time
 * only: that fits SQLite's primary key index and Cassandra's day-bucketed partitions alike.
 */
export function daySlices(range: DeviceRange): DaySlice[] {
  if (!(range.to >= range.from)) throw new RangeError(`bad range ${range.from}..${range.to}`);
  if (range.to - range.from > MAX_RANGE_SECONDS) {
    throw new RangeError(`range of ${range.to - range.from} s exceeds ${MAX_RANGE_SECONDS} s; read in pages`);
  }
  const slices: DaySlice[] = [];
  let at = range.from;
  while (at < range.to) {
    const dayEnd = (Math.floor(at / 86_400) + 1) * 86_400;
    const end = Math.min(dayEnd, range.to);
    const a = epochSecondToParts(at);
    slices.push({
      ec_date: a.ec_date,
      fromTime: a.ec_time,
      toTime: end === dayEnd ? '240000' : epochSecondToParts(end).ec_time,
    });
    at = end;
  }
  return slices;
}
