import { batchEpochSecond, epochSecondToParts, type Batch } from '../domain/batch.js';

/**
 * A write lands "late" when its sync period has ended, or ends within this many seconds: only then may
 * a sync round (here or on another receiver whose clock runs ahead by less than this) have recorded the
 * period already. Writes into the current period need no re-open.
 */
export const LATE_WRITE_MARGIN_S = 60;

/** The ec_checksum keys a write of `b` re-opens: its minute's row and its sync period's row. */
export function reopenedCheckKeys(
  b: Pick<Batch, 'device_id' | 'ec_date' | 'ec_time'>,
  periodS: number,
): [string, string, string, number][] {
  const minute = { ec_date: b.ec_date, ec_time: `${b.ec_time.slice(0, 4)}00` };
  const period = epochSecondToParts(Math.floor(batchEpochSecond(b) / periodS) * periodS);
  return [
    [b.device_id, minute.ec_date, minute.ec_time, 60],
    [b.device_id, period.ec_date, period.ec_time, periodS],
  ];
}

/** Whether a write of `b` may land in a period a sync round has already recorded (see LATE_WRITE_MARGIN_S). */
export function isLateWrite(b: Pick<Batch, 'ec_date' | 'ec_time'>, periodS: number, nowS: number): boolean {
  const periodEnd = (Math.floor(batchEpochSecond(b) / periodS) + 1) * periodS;
  return periodEnd <= nowS + LATE_WRITE_MARGIN_S;
}
