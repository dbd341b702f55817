// @ts-check
// The verdict of bench/overload-ramp.mjs (issue 17, must-show 5) over its levels' rows: a ramp past
// capacity (some level answered 503) with no retransmission storm, 503s within the bound, and the
// acknowledged plateau held past its best level; where the rows were counted, nothing acknowledged lost.

/**
 * @param {Array<{ level: number, ok: number, plateau: number, refused503: number, retransPct: number,
 *   shedP99?: number, stored?: number, warmOk?: number }>} rows
 * @param {{ maxWaitMs: number, maxAnswerMs?: number, hold: number, retransLimitPct: number }} bounds
 *   maxAnswerMs: ingest.max_answer_ms when set: batches admitted and not committed by then are answered 503
 *   at that deadline, which is then the bound of the 503s (still under T1).
 * @returns {{ pass: boolean, lines: string[] }}
 */
export function rampVerdict(rows, { maxWaitMs, maxAnswerMs = 0, hold, retransLimitPct }) {
  const lines = [];
  const bound = Math.max(maxWaitMs, maxAnswerMs);
  const boundName = maxAnswerMs > maxWaitMs ? 'ingest.max_answer_ms' : 'ingest.max_wait_ms';
  let pass = true;
  const check = (ok, text) => {
    lines.push(`${ok ? 'PASS' : 'FAIL'} ${text}`);
    pass &&= ok;
  };
  const best = rows.reduce((a, r) => (r.plateau > (a?.plateau ?? -1) ? r : a), undefined);
  const shedding = rows.filter((r) => r.refused503 > 0);
  check(
    shedding.length > 0,
    `past capacity: ${shedding.length} of ${rows.length} levels answered 503 ` +
      `(${shedding.map((r) => r.level).join(', ') || 'none: add higher levels'})`,
  );
  for (const r of rows) {
    check(
      r.retransPct < retransLimitPct,
      `${r.level}/s: retransmissions ${r.retransPct.toFixed(2)} % of calls (< ${retransLimitPct} %)`,
    );
    if (r.refused503 > 0)
      check(
        (r.shedP99 ?? Infinity) <= bound,
        `${r.level}/s: ${r.refused503} answered 503, p99 ${r.shedP99} ms (<= ${boundName} ${bound} ms)`,
      );
    if (best && r.level > best.level)
      check(
        r.plateau >= hold * best.plateau,
        `${r.level}/s: acknowledged plateau ${r.plateau}/s (>= ${hold} x the best, ` +
          `${best.plateau}/s at ${best.level}/s)`,
      );
    if (r.stored !== undefined) {
      const acked = r.ok + (r.warmOk ?? 0);
      const warm = r.warmOk ? ` (${r.warmOk} of them in the warm-up)` : '';
      check(r.stored >= acked, `${r.level}/s: ${r.stored} rows stored >= ${acked} acknowledged${warm}`);
    }
  }
  return { pass, lines };
}
