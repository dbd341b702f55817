import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { compactToEpochSecond } from '../domain/batch.js';
import { EcError } from '../errors.js';
import { formatHourReport, hourReport } from '../report/hour-report.js';
import { createStore } from '../store/open-store.js';
import { VERSION } from '../version.js';
import { configFromArgs, withConfigOptions, type ConfigArgs } from './config-options.js';

/** Exit codes: 0 data present and intact, 1 data missing or damaged, 2 bad arguments or config. */
export async function main(argv = hideBin(process.argv)): Promise<void> {
  const fail = (message: string): never => {
    process.stderr.write(`ec-test: ${message}\n`);
    process.exit(2);
  };
  const args = (await withConfigOptions(
    yargs(argv)
      .scriptName('ec-test')
      .usage(
        '$0 -i <device> [-d <yyyymmddhhmiss>] [options]\n\nReports what the store holds for one device over ' +
          'the hour containing -d (UTC):\nbatches and samples, samples per minute, seconds without data, ' +
          'checksum verification.\nExit codes: 0 present and intact, 1 missing or damaged, 2 bad arguments or config.',
      )
      .option('i', { alias: 'device', type: 'string', demandOption: true, describe: 'Device id (e.g. 00aabbccddee)' })
      .option('d', {
        alias: 'date',
        type: 'string',
        describe: 'Any second of the hour to check, yyyymmddhhmiss UTC (default: the previous hour)',
      })
      .option('until', {
        type: 'string',
        describe: 'End the report window early, yyyymmddhhmiss UTC (exclusive): seconds after it are not due',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
      .example('$0 -i 00aabbccddee -d 20160909150505', 'report 15:00-16:00 UTC of 2016-09-09'),
  )
    .completion('completion', `print a bash/zsh completion script for an installed ec-test`)
    .version(VERSION)
    .strict()
    .fail((msg, err) => fail(`${err?.message ?? msg}\nRun ec-test --help for usage.`))
    .help()
    .parseAsync()) as ConfigArgs & { i: string; d?: string; until?: string; json: boolean };

  let hourStart: number;
  if (args.d !== undefined) {
    const sec = compactToEpochSecond(String(args.d));
    if (Number.isNaN(sec)) fail(`-d ${JSON.stringify(String(args.d))} is not a real yyyymmddhhmiss date and time`);
    hourStart = Math.floor(sec / 3600) * 3600;
  } else {
    hourStart = Math.floor(Date.now() / 3_600_000) * 3600 - 3600;
  }
  let until = Infinity;
  if (args.until !== undefined) {
    until = compactToEpochSecond(String(args.until));
    if (Number.isNaN(until))
      fail(`--until ${JSON.stringify(String(args.until))} is not a real yyyymmddhhmiss date and time`);
  }
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(String(args.i)))
    fail(`-i ${JSON.stringify(String(args.i))} is not a device id (1-64 of [A-Za-z0-9._:-])`);
  let store;
  try {
    const { config } = configFromArgs(args);
    store = createStore(config);
    await store.open();
  } catch (e) {
    // Bad config, no store there, or a store that cannot be read (not a database, Cassandra down).
    if (e instanceof EcError) fail(e.message);
    throw e;
  }
  try {
    const report = await hourReport(store, String(args.i), hourStart, Date.now() / 1000, until);
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : formatHourReport(report));
    process.exitCode = report.result === 'ok' ? 0 : 1;
  } finally {
    await store.close();
  }
}
