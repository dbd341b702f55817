import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, EcError, QueryError, UsageError } from '../errors.js';
import { backupStore } from './backup-store.js';
import { createLogger } from '../log.js';
import { startServer } from '../server.js';
import { cassandraSchemaCql } from '../store/cassandra-store.js';
import { upgradeStore } from './upgrade-store.js';
import { DEVICE_ACTIONS, deviceCommand, type DeviceAction } from './device-command.js';
import { devicesCommand } from './devices-command.js';
import { dailyCommand } from './daily-command.js';
import { VERSION } from '../version.js';
import { configFromArgs, withConfigOptions, type ConfigArgs } from './config-options.js';
import { SERVER_NODE_FLAGS, semiSpaceMbInEffect, sizeWorkerYoungGeneration } from './node-flags.js';

/** `ec-server`: runs the ingestion server in the foreground (use nohup, pm2 or systemd to detach). */
export async function main(argv = hideBin(process.argv)): Promise<void> {
  const args = (await withConfigOptions(
    yargs(argv)
      .scriptName('ec-server')
      .usage(
        '$0 [options]\n\nReceives SIP MESSAGE consumption batches over UDP and TCP and stores them ' +
          'durably.\nExit codes: 0 stopped by SIGINT/SIGTERM, 1 runtime failure (e.g. port in use), 2 bad ' +
          'config or usage.',
      )
      .command('$0', 'run the server (default)')
      .command(
        'schema',
        'print the Cassandra schema (CQL) for the configured keyspace, for operators who manage schema by ' +
          'hand (cassandra.create_schema=false)',
      )
      .command(
        'upgrade-store',
        'bring a store to the current schema: add the per-batch aggregate columns and the rollup table (SQLite ' +
          'and Cassandra), and convert an embedded store made by a development build from before 0.1.0 ' +
          '(ec_consumption WITHOUT ROWID) to the current, faster table layout, in one transaction (best with the ' +
          'server stopped: meanwhile its commits wait, and meters may get 503 and resend)',
      )
      .command(
        'backup <dest>',
        'copy the embedded store to the file DEST while the server runs (SQLite online backup: consistent as of ' +
          'its start; progress on a terminal; never overwrites DEST)',
      )
      .completion(
        'completion',
        'print a bash/zsh completion script for an installed ec-server (see docs/operations.md)',
      )
      .command(
        'device <action> [id]',
        'device credentials: add ID (prints a new secret once), list, rotate ID, remove ID',
        (y) =>
          y
            .positional('action', { choices: DEVICE_ACTIONS, describe: 'what to do' })
            .positional('id', { type: 'string', describe: 'device id (as in the batch body)' })
            .option('json', { type: 'boolean', default: false, describe: 'list: JSON for machines' }),
      )
      .command(
        'devices',
        'the device registry: every device ever seen, first and last seen, last X-EC-Seq, batches and samples ' +
          'today (UTC), online or offline (devices.offline_after); read from the store (written every ' +
          'devices.flush_seconds)',
        (y) =>
          y
            .option('offline', { type: 'boolean', default: false, describe: 'only the devices offline' })
            .option('json', { type: 'boolean', default: false, describe: 'JSON for machines' }),
      )
      .command(
        'daily',
        "one device's statistics per UTC day: total, mean, peak and when, min, samples, coverage (share of " +
          'seconds with data), sync status; read from the store',
        (y) =>
          y
            .option('i', { alias: 'device', type: 'string', demandOption: true, describe: 'device id' })
            .option('from', { type: 'string', describe: 'first day: epoch ms or ISO-8601 UTC (default: 7 days ago)' })
            .option('to', { type: 'string', describe: 'end (exclusive, widened to a whole day; default: now)' })
            .option('json', { type: 'boolean', default: false, describe: 'JSON for machines' }),
      )
      .example('$0 --config config/config.properties', 'run with the shipped config (embedded SQLite store)')
      .example('SECRET=$($0 device add 00aabbccddef)', 'give a meter credentials (the secret goes to the meter)')
      .example(
        '$0 schema --config config/config.properties | cqlsh',
        'create the Cassandra keyspace and tables by hand',
      )
      .example(
        '$0 upgrade-store --data-dir /var/lib/ec-server',
        'convert an older SQLite file to the current table layout',
      )
      .example(
        '$0 backup /backup/ec-$(date +%F).sqlite --config /etc/ec-server/config.properties',
        'an online backup of the embedded store (restore: docs/operations.md)',
      )
      .example('$0 --port 5060 --data-dir /var/lib/ec-server', 'override keys from the command line')
      .example('EC_STORAGE_BACKEND=cassandra $0', 'environment variables: EC_ + key in upper case, dots as _'),
  )
    .version(VERSION)
    .strict()
    .fail((msg, err) => {
      process.stderr.write(`ec-server: ${err?.message ?? msg}\nRun ec-server --help for usage.\n`);
      process.exit(2);
    })
    .help()
    .parseAsync()) as ConfigArgs & { _: (string | number)[]; dest?: string };

  let loaded;
  try {
    loaded = configFromArgs(args);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`ec-server: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (args._[0] === 'schema') {
    process.stdout.write(cassandraSchemaCql(loaded.config.cassandra));
    return;
  }
  if (args._[0] === 'upgrade-store') {
    const result = await upgradeStore(loaded.config);
    (result.ok ? process.stdout : process.stderr).write(`ec-server: ${result.message}\n`);
    if (!result.ok) process.exit(result.exitCode);
    return;
  }
  if (args._[0] === 'device') {
    const a = args as unknown as { action: DeviceAction; id?: string; json: boolean };
    try {
      const result = await deviceCommand(loaded.config, a.action, a.id, a.json);
      process.stdout.write(result.out);
      if (result.note) process.stderr.write(`ec-server: ${result.note}\n`);
      if (result.exitCode !== 0) process.exit(result.exitCode);
    } catch (e) {
      process.stderr.write(`ec-server: ${e instanceof EcError ? e.message : String(e)}\n`);
      process.exit(1);
    }
    return;
  }
  if (args._[0] === 'devices') {
    const a = args as unknown as { offline: boolean; json: boolean };
    try {
      const result = await devicesCommand(loaded.config, { offline: a.offline, json: a.json });
      process.stdout.write(result.out);
      process.stderr.write(`ec-server: ${result.note}\n`);
    } catch (e) {
      process.stderr.write(`ec-server: ${e instanceof EcError ? e.message : String(e)}\n`);
      process.exit(e instanceof ConfigError ? 2 : 1);
    }
    return;
  }
  if (args._[0] === 'daily') {
    const a = args as unknown as { i: string; from?: string; to?: string; json: boolean };
    try {
      const result = await dailyCommand(loaded.config, { device: a.i, from: a.from, to: a.to, json: a.json });
      process.stdout.write(result.out);
      process.stderr.write(`ec-server: ${result.note}\n`);
    } catch (e) {
      process.stderr.write(`ec-server: ${e instanceof EcError ? e.message : String(e)}\n`);
      process.exit(e instanceof ConfigError || e instanceof QueryError ? 2 : 1);
    }
    return;
  }
  if (args._[0] === 'backup') {
    try {
      process.stdout.write(`ec-server: ${await backupStore(loaded.config, String(args.dest))}\n`);
    } catch (e) {
      process.stderr.write(`ec-server: backup failed: ${(e as Error).message}\n`);
      process.exit(e instanceof UsageError || e instanceof ConfigError ? 2 : 1);
    }
    return;
  }
  if (args._.length > 0) {
    process.stderr.write(
      `ec-server: unknown command ${JSON.stringify(String(args._[0]))}\nRun ec-server --help for usage.\n`,
    );
    process.exit(2);
  }
  const log = createLogger(loaded.config.log.level);
  for (const w of loaded.warnings) log.warn(w);
  const semiSpaceMb = semiSpaceMbInEffect();
  log.info(
    { config: loaded.file ?? 'built-in defaults', version: VERSION, semiSpaceMb: semiSpaceMb ?? 'V8 default' },
    'starting ec-server',
  );
  if (semiSpaceMb === undefined) {
    // Works all the same, with more GC per request (see node-flags.ts): say how to start it.
    log.info(
      `node started without ${SERVER_NODE_FLAGS.join(' ')}: run bin/ec-server.js directly, or node ` +
        `${SERVER_NODE_FLAGS.join(' ')} bin/ec-server.js, for the throughput in docs/performance.md`,
    );
  }

  sizeWorkerYoungGeneration();
  let server;
  try {
    server = await startServer(loaded.config, log);
  } catch (e) {
    const message = e instanceof EcError ? e.message : String(e);
    log.fatal({ err: message }, 'cannot start');
    process.stderr.write(`ec-server: ${message}\n`);
    process.exit(e instanceof ConfigError ? 2 : 1);
  }

  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // An operator (or a test) can ask for a sync round at once.
  process.on('SIGUSR2', () => {
    if (!server.sync) return log.warn('SIGUSR2: sync is disabled (sync.enabled=false)');
    log.info('SIGUSR2: sync round requested');
    void server.sync.runRound().catch((err) => log.error({ err }, 'sync round failed'));
  });
  // A closed terminal must not stop an unattended server (Node does not keep nohup's SIG_IGN).
  // SIGHUP: certificate rotation without a restart; other config changes need one.
  process.on('SIGHUP', () => {
    if (!server.tls && !server.sync?.tls) {
      return log.info('SIGHUP ignored: restart the server to apply config changes');
    }
    try {
      server.reloadTls();
      log.info('SIGHUP: TLS certificates read again (new connections use them; other config changes need a restart)');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'SIGHUP: TLS certificates not reloaded, the ones in use stay');
    }
  });
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
