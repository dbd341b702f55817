#!/usr/bin/env node
// @ts-check
// Microseconds per 1000-record list (bench/sipp/generate.mjs's records, ~17 kB as large-tcp sends them) of
// what ingest and raw reads do with a record list, rounds interleaved, the fastest round per variant:
//   parse            parseBatchBody without statistics (storage.aggregates=false)
//   parse+stats      parseBatchBody with them, read in the checksum's pass (what ingest runs)
//   valueStats       a separate pass over the string (what the store ran before, and now only as a fallback)
//   readRecords      the raw reader (consumption-query.ts raw step): the records into two arrays
//   forEachRecord-sliced  the former raw reader: indexOf, slice and Number() per field
// --base DIR adds the same variants from another build's dist/ (e.g. a checkout of main) as base:*, so
// that before and after are measured in one run on the same (shared) machine.
//
//   npm run build && node bench/record-scan.mjs [--records 1000] [--rounds 9] [--base ../main/dist]
import { parseArgs } from 'node:util';
import { records as makeRecords } from './sipp/generate.mjs';

const { values: a } = parseArgs({
  options: {
    records: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '9' },
    iterations: { type: 'string', default: '4000' },
    base: { type: 'string' },
  },
});
const records = makeRecords(Number(a.records)).join(';');
const body = `bench-meter|20260101000000|${records}`;

/** @param {string} dist */
async function variants(dist, prefix) {
  const { parseBatchBody } = await import(`${dist}/src/domain/batch-body.js`);
  const { valueStats, readRecords, forEachRecord } = await import(`${dist}/src/domain/sample-stats.js`);
  let acc = 0;
  /** @type {(us: number, v: number) => void} */
  const add = (_, v) => {
    acc += v;
  };
  const columns = { us: [], value: [] };
  return {
    [`${prefix}parse`]: () => parseBatchBody(body).values_count,
    [`${prefix}parse+stats`]: () => parseBatchBody(body, { stats: true }).values_stats?.sum ?? 0,
    [`${prefix}valueStats`]: () => valueStats(records).sum,
    [`${prefix}readRecords`]: () => {
      acc = 0;
      if (!readRecords)
        forEachRecord(records, add); // a build from before readRecords
      else {
        columns.us.length = 0;
        columns.value.length = 0;
        readRecords(records, columns);
        for (let k = 0; k < columns.value.length; k++) acc += columns.value[k];
      }
      return acc;
    },
  };
}

/** The raw reader before the single pass, for the ratio (src/ in git history: sample-stats.ts). */
function forEachRecordSliced(text, fn) {
  const n = text.length;
  let at = 0;
  while (at < n) {
    let semi = text.indexOf(';', at);
    if (semi < 0) semi = n;
    const comma = text.indexOf(',', at);
    if (comma > at && comma < semi) fn(Number(text.slice(at, comma)), Number(text.slice(comma + 1, semi)));
    at = semi + 1;
  }
}

const all = await variants(new URL('../dist', import.meta.url).pathname, '');
let sliced = 0;
all['forEachRecord-sliced'] = () => {
  sliced = 0;
  forEachRecordSliced(records, (_, v) => (sliced += v));
  return sliced;
};
if (a.base) Object.assign(all, await variants(a.base, 'base:'));

const iterations = Number(a.iterations);
/** @type {Record<string, number[]>} */
const samples = Object.fromEntries(Object.keys(all).map((k) => [k, []]));
let sink = 0;
for (let round = 0; round < Number(a.rounds); round++) {
  for (const [name, f] of Object.entries(all)) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += f();
    samples[name].push(Number(process.hrtime.bigint() - t0) / iterations / 1000);
  }
}
// The fastest round: on a shared machine the others measure the neighbours as well.
const fastest = (xs) => Math.min(...xs);
const result = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, +fastest(xs.slice(1)).toFixed(1)]));
console.log(JSON.stringify({ records: Number(a.records), bytes: records.length, usPerList: result }, null, 1));
const ratio = (x, y) => (result[x] && result[y] ? +(result[x] / result[y]).toFixed(2) : undefined);
console.log(
  JSON.stringify({
    statsCostOverParse: ratio('parse+stats', 'parse'),
    separatePassOverFused: +((result.parse + result.valueStats) / result['parse+stats']).toFixed(2),
    rawReaderSlicedOverSinglePass: ratio('forEachRecord-sliced', 'readRecords'),
    ...(a.base && {
      baseParsePlusStoreStatsOverNew: +(
        (result['base:parse'] + result['base:valueStats']) /
        result['parse+stats']
      ).toFixed(2),
    }),
    checksum: sink > 0,
  }),
);
