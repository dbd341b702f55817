import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import cliProgress from 'cli-progress';
import { EcError, QueryError } from '../errors.js';
import { ConsumptionQuery } from '../query/consumption-query.js';
import { bucketLines, header, rawLines } from '../query/formats.js';
import { DAY_MS, spanParams, STEP_MS, STEPS, type ConsumptionParams, type Step } from '../query/query-params.js';
import { createStore } from '../store/open-store.js';
import { VERSION } from '../version.js';
import { configFromArgs, withConfigOptions, type ConfigArgs } from './config-options.js';

/** Any span: the export streams a day of buckets or a minute of samples at a time. */
const MAX_EXPORT_MS = 100 * 366 * DAY_MS;

type ExportArgs = ConfigArgs & {
  i: string;
  from: string;
  to: string;
  step: Step;
  format: 'csv' | 'jsonl';
  out?: string;
};

/**
 * `ec-export`: streams one device's consumption over [from, to) as CSV or JSON Lines to stdout or a file, from the
 * store opened read-only (beside a running server), in constant memory for any span. Exit codes: 0 written,
 * 1 the store failed, 2 bad arguments or config (no store at the path).
 */
export async function main(argv = hideBin(process.argv)): Promise<void> {
  const fail = (message: string): never => {
    process.stderr.write(`ec-export: ${message}\n`);
    process.exit(2);
  };
  const args = (await withConfigOptions(
    yargs(argv)
      .scriptName('ec-export')
      .usage(
        '$0 -i <device> --from <time> --to <time> [--step raw|1s|1m|1h|1d] [--format csv|jsonl] [--out FILE]\n\n' +
          "Exports one device's consumption over [from, to) from the store (read-only), streamed in constant " +
          'memory.\nTimes: epoch ms or ISO-8601 (UTC). raw: one row per sample (t,value); other steps: one row ' +
          'per bucket with data (t,count,sum,min,max,mean).\nExit codes: 0 written, 1 store failure, 2 bad ' +
          'arguments or config.',
      )
      .option('i', { alias: 'device', type: 'string', demandOption: true, describe: 'Device id' })
      .option('from', { type: 'string', demandOption: true, describe: 'Start (inclusive): epoch ms or ISO-8601 UTC' })
      .option('to', { type: 'string', demandOption: true, describe: 'End (exclusive): epoch ms or ISO-8601 UTC' })
      .option('step', { choices: STEPS, default: 'raw', describe: 'raw samples, or buckets of this length' })
      .option('format', { choices: ['csv', 'jsonl'] as const, default: 'csv' as const, describe: 'Output format' })
      .option('out', { alias: 'o', type: 'string', describe: 'Write to FILE instead of stdout' })
      .example('$0 -i 00aabbccddee --from 2026-12-01 --to 2026-12-02 --out day.csv', 'a day of samples as CSV')
      .example('$0 -i 00aabbccddee --from 2026-11-01 --to 2026-12-01 --step 1h --format jsonl', 'a month, hourly'),
  )
    .completion('completion', 'print a bash/zsh completion script for an installed ec-export')
    .version(VERSION)
    .strict()
    .fail((msg, err) => fail(`${err?.message ?? msg}\nRun ec-export --help for usage.`))
    .help()
    .parseAsync()) as ExportArgs;

  let p: ConsumptionParams;
  try {
    const span = spanParams(
      String(args.i),
      { from: args.from, to: args.to },
      {
        maxSpanMs: MAX_EXPORT_MS,
        defaultSpanMs: DAY_MS,
        ...(args.step === 'raw' ? {} : { alignMs: STEP_MS[args.step] }),
        what: 'the export',
      },
    );
    p = { ...span, step: args.step };
  } catch (e) {
    if (e instanceof QueryError) fail(e.message);
    throw e;
  }
  let store;
  try {
    const { config } = configFromArgs(args);
    store = createStore(config, 'read');
    await store.open();
  } catch (e) {
    // Bad config, no store there ("no store at PATH"), or a store that cannot be read.
    if (e instanceof EcError) fail(e.message);
    throw e;
  }
  const out: Writable = args.out === undefined ? process.stdout : createWriteStream(args.out);
  const bar = process.stderr.isTTY ? progressBar() : undefined;
  try {
    const rows = await exportTo(out, args.format, p, new ConsumptionQuery(store), (t) => bar?.update(progress(p, t)));
    bar?.update(1000);
    bar?.stop();
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
    const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    process.stderr.write(`ec-export: ${rows} row(s) of ${p.device}, step ${p.step}; peak RSS ${rssMb} MB\n`);
  } catch (e) {
    bar?.stop();
    process.stderr.write(`ec-export: ${e instanceof EcError ? e.message : String(e)}\n`);
    process.exitCode = 1;
  } finally {
    await store.close();
  }
}

/**
 * Writes the export to `out`, waiting for it to drain whenever its buffer is full (so memory stays at a chunk:
 * a day of buckets or a minute of samples). Resolves with the rows written; `at` is told how far it got (ms).
 */
export async function exportTo(
  out: Writable,
  format: 'csv' | 'jsonl',
  p: ConsumptionParams,
  q: ConsumptionQuery,
  at: (t: number) => void = () => undefined,
): Promise<number> {
  let rows = 0;
  const write = async (s: string): Promise<void> => {
    if (s.length > 0 && !out.write(s)) await once(out, 'drain');
  };
  await write(header(format, p.step));
  if (p.step === 'raw') {
    for await (const c of q.raw(p.device, p.from, p.to)) {
      rows += c.t.length;
      await write(rawLines(format, c));
      at(c.t[c.t.length - 1]!);
    }
  } else {
    for await (const c of q.buckets(p.device, p.step, p.from, p.to)) {
      rows += c.length;
      await write(bucketLines(format, c));
      if (c.length > 0) at(c[c.length - 1]!.t);
    }
  }
  return rows;
}

function progressBar(): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    { format: 'ec-export [{bar}] {percentage}% | {eta_formatted} left', stream: process.stderr, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1000, 0);
  return bar;
}

/** Per mille of [from, to) done once the data up to `t` is written. */
function progress(p: ConsumptionParams, t: number): number {
  return Math.max(0, Math.min(1000, Math.floor(((t - p.from) / (p.to - p.from)) * 1000)));
}
