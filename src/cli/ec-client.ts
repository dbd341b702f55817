import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Journal } from '../client/journal.js';
import { MeterClient, type Source } from '../client/meter-client.js';
import { readCsvBatches } from '../client/readings.js';
import type { ClientTls } from '../client/stream-socket.js';
import { DEFAULT_POOL_OPTIONS, FailoverSender } from '../client/failover-sender.js';
import { parseServerSpec, resolveEndpoints, type Endpoint, type ServerSpec } from '../client/server-list.js';
import { endpointKey, ServerPool } from '../client/server-pool.js';
import { SyncClient } from '../client/sync-client.js';
import { compactToEpochSecond } from '../domain/batch.js';
import { ConfigError } from '../errors.js';
import type { Logger } from 'pino';
import { createLogger } from '../log.js';
import { VERSION } from '../version.js';
import { configFromArgs, withConfigOptions, type ConfigArgs } from './config-options.js';

interface ClientArgs extends ConfigArgs {
  devices: number;
  device?: string[];
  rate: number;
  'batch-ms': number;
  duration: number;
  start?: string;
  csv?: string;
  loss: number;
  corrupt: number;
  journal: string;
  'retention-hours': number;
  window: number;
  transport: 'auto' | 'udp' | 'tcp' | 'tls';
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  'sync-tls'?: boolean;
  sync: boolean;
  linger: number;
  seed?: number;
  secret?: string;
  secrets?: string;
  server?: string;
  'sync-server'?: string;
  'server-retry': number;
  'dns-server'?: string;
  'srv-refresh': number;
  't1-ms': number;
}

function usageExit(m: string): never {
  process.stderr.write(`ec-client: ${m}\nRun ec-client --help for usage.\n`);
  process.exit(2);
}

/**
 * `ec-client`: the reference meter. Exit 0 when every batch was acknowledged or repaired-able, 1 on failures, 2 on bad
 * usage.
 */
export async function main(argv = hideBin(process.argv)): Promise<void> {
  const usage = usageExit;
  const args = (await withConfigOptions(
    yargs(argv)
      .scriptName('ec-client')
      .usage(
        '$0 [options]\n\nA reference meter: generates (or replays) consumption readings, journals every ' +
          'batch before sending it as a SIP MESSAGE with integrity headers, retransmits per RFC 3261, ' +
          "honours 503 Retry-After, and answers the server's sync requests from its journal.\nThe server " +
          'address comes from --server (several receivers, or a domain with SRV records: it fails over and ' +
          'comes back) or else from the same config as ec-server (sip.public_addr, sip.port, sync.ip, ' +
          'sync.port).\nExit codes: 0 all batches acknowledged, 1 some were not (the journal keeps them for ' +
          'sync), 2 bad usage.',
      )
      .option('devices', {
        type: 'number',
        default: 1,
        describe: 'Number of simulated meters (ids 02000000000N in hex)',
      })
      .option('device', { type: 'string', array: true, describe: 'Explicit device id(s) instead of --devices' })
      .option('rate', { type: 'number', default: 1000, describe: 'Samples per second per device' })
      .option('batch-ms', {
        type: 'number',
        default: 1000,
        describe: 'Milliseconds of readings per batch (e.g. 200 = 5 batches/s)',
      })
      .option('duration', {
        type: 'number',
        default: 60,
        describe: 'Seconds of readings to send (0 = run until stopped)',
      })
      .option('start', {
        type: 'string',
        describe:
          'Simulated start yyyymmddhhmiss (UTC): send as fast as acknowledgements allow instead of in real time',
      })
      .option('csv', { type: 'string', describe: 'Replay readings from a CSV file: device,YYYYMMDDhhmmss,us,value' })
      .option('loss', {
        type: 'number',
        default: 0,
        describe: 'Fault injection: fraction of batches journaled but not sent',
      })
      .option('corrupt', {
        type: 'number',
        default: 0,
        describe: 'Fault injection: fraction sent with altered values (and a matching checksum header)',
      })
      .option('journal', {
        type: 'string',
        default: './client-journal',
        describe: 'Directory of the local journal (SQLite)',
      })
      .option('retention-hours', {
        type: 'number',
        default: 24,
        describe: 'Hours of batches kept in the journal for sync',
      })
      .option('window', { type: 'number', default: 64, describe: 'Requests in flight at once' })
      .option('transport', {
        choices: ['auto', 'udp', 'tcp', 'tls'] as const,
        default: 'auto' as const,
        describe:
          'auto: UDP up to 1300 bytes, TCP above (RFC 3261 18.1.1); tls: every MESSAGE over TLS to sip.tls_port, ' +
          'the server certificate verified (see --ca)',
      })
      .option('ca', {
        type: 'string',
        describe:
          'PEM file of the CA that signs the server certificate (TLS); default: the system CAs. A server whose ' +
          'certificate does not verify, or does not name the server address (see --servername), is refused',
      })
      .option('servername', {
        type: 'string',
        describe: 'Name the server certificate must carry (TLS); default: the server address (sip.public_addr)',
      })
      .option('cert', { type: 'string', describe: 'PEM file of a client certificate (TLS), with --key' })
      .option('key', { type: 'string', describe: 'PEM file of the private key of --cert' })
      .option('sync-tls', {
        type: 'boolean',
        describe: 'Connect to the sync service over TLS (default: sync.tls of the config), verified like SIP',
      })
      .option('sync', {
        type: 'boolean',
        default: true,
        describe: 'Connect to the sync service and answer its requests',
      })
      .option('linger', {
        type: 'number',
        default: 0,
        describe: 'Seconds to stay connected for sync after sending (0 with --duration 0: forever)',
      })
      .option('secret', {
        type: 'string',
        describe: 'Digest secret of the device(s) (from `ec-server device add`); with several devices, see --secrets',
      })
      .option('secrets', {
        type: 'string',
        describe: 'File of "device secret" lines: each device authenticates with its own secret',
      })
      .option('server', {
        type: 'string',
        describe:
          'Receivers, most preferred first: host:port[,host:port...]; or one domain name without a port, whose ' +
          'SRV records _sip._udp (_sip._tcp with --transport tcp) give them (RFC 3263). On a timeout, 503 or ' +
          'lost connection the meter moves to the next and returns later (--server-retry)',
      })
      .option('sync-server', {
        type: 'string',
        describe: 'Sync servers, like --server (a domain: SRV _ec-sync._tcp). Default: the --server hosts on sync.port',
      })
      .option('server-retry', {
        type: 'number',
        default: DEFAULT_POOL_OPTIONS.retryMs / 1000,
        describe: 'Seconds a failed server is avoided before one request probes it (doubles per failure, max 600)',
      })
      .option('srv-refresh', {
        type: 'number',
        default: 300,
        describe:
          'Seconds between SRV lookups of a --server/--sync-server domain, so that receivers added or removed in DNS ' +
          'are followed (0: look up once at start). A failed lookup keeps the list in use',
      })
      .option('dns-server', {
        type: 'string',
        describe: 'DNS server(s) for the SRV lookup, ip[:port][,...] (default: the system resolver)',
      })
      .option('t1-ms', {
        type: 'number',
        default: 500,
        describe: 'SIP timer T1 (ms): UDP retransmissions start at T1; a request times out after 64*T1 (Timer F)',
      })
      .option('seed', { type: 'number', describe: 'Seed of the fault-injection random numbers (reproducible runs)' })
      .example('$0 --devices 10 --duration 600', '10 meters, 1000 samples/s each, in real time for 10 minutes')
      .example(
        '$0 --transport tls --ca ca.crt --sync-tls',
        'over TLS (SIP to sip.tls_port, and sync), trusting the server certificate only if ca.crt signed it',
      )
      .example(
        '$0 --start 20260101000000 --duration 600 --loss 0.05 --corrupt 0.01 --linger 120',
        'simulated 10 minutes as fast as possible, with faults for sync to repair',
      ),
  )
    .completion('completion', `print a bash/zsh completion script for an installed ec-client`)
    .version(VERSION)
    .strict()
    .fail((msg, err) => usage(err?.message ?? msg))
    .help()
    .parseAsync()) as ClientArgs;

  for (const [name, v] of [
    ['loss', args.loss],
    ['corrupt', args.corrupt],
  ] as const)
    if (!(v >= 0 && v <= 1)) usage(`--${name} must be between 0 and 1`);
  if (!(args.rate >= 1 && args.rate <= 1_000_000)) usage('--rate must be 1..1000000');
  if (!(args['batch-ms'] >= 1 && args['batch-ms'] <= 1000)) usage('--batch-ms must be 1..1000');
  let loaded;
  try {
    loaded = configFromArgs(args);
  } catch (e) {
    if (e instanceof ConfigError) usage(e.message);
    throw e;
  }
  const { config } = loaded;
  const log = createLogger(config.log.level, 'ec-client');
  const devices = args.device?.length
    ? args.device
    : Array.from({ length: args.devices }, (_, i) => `02${(i + 1).toString(16).padStart(10, '0')}`);
  const start = args.start !== undefined ? compactToEpochSecond(args.start) : Math.floor(Date.now() / 1000);
  if (Number.isNaN(start)) usage(`--start ${JSON.stringify(args.start)} is not yyyymmddhhmiss`);
  const source: Source = args.csv
    ? { kind: 'batches', batches: readCsvBatches(args.csv) }
    : {
        kind: 'generate',
        devices,
        start,
        seconds: args.duration,
        realtime: args.start === undefined,
        rate: args.rate,
        batchMs: args['batch-ms'],
      };
  const allDevices = source.kind === 'batches' ? [...new Set(source.batches.map((b) => b.device_id))] : devices;

  const clientTls = readClientTls(args);
  const syncTls = (args['sync-tls'] ?? config.sync.tls) ? clientTls : undefined;
  const journal = new Journal(resolve(args.journal));
  await journal.open();
  const tls = args.transport === 'tls';
  if (!(args['server-retry'] > 0 && args['server-retry'] <= 600))
    usage('--server-retry must be above 0 and at most 600 seconds');
  if (!(args['t1-ms'] >= 10 && args['t1-ms'] <= 10_000)) usage('--t1-ms must be 10..10000');
  const sipPort = tls ? config.sip.tlsPort : config.sip.port;
  if (!(args['srv-refresh'] >= 0 && args['srv-refresh'] <= 86_400)) usage('--srv-refresh must be 0..86400 seconds');
  const servers = await serversOf(args, config.sip.publicAddr, sipPort, config.sync.ip, config.sync.port);
  log.info({ sip: servers.sip.endpoints, sync: servers.sync.endpoints }, 'servers');
  const poolOptions = { ...DEFAULT_POOL_OPTIONS, retryMs: args['server-retry'] * 1000 };
  const followSip = servers.sip.lookupAgain !== undefined && args['srv-refresh'] > 0;
  const sender = FailoverSender.create(
    servers.sip.endpoints,
    { transport: args.transport, tls: tls ? clientTls : undefined, from: allDevices[0]!, t1Ms: args['t1-ms'] },
    log,
    poolOptions,
    servers.sip.endpoints.length > 1 || followSip,
  );
  await sender.start();
  const syncPool = new ServerPool(servers.sync.endpoints, poolOptions);
  const stopFollowing = [
    followDns('sip', servers.sip, args['srv-refresh'], (e) => sender.refresh(e), log),
    followDns('sync', servers.sync, args['srv-refresh'], async (e) => void syncPool.replace(e), log),
  ];
  const retentionS = Math.round(args['retention-hours'] * 3600);
  const secrets = readSecrets(args.secret, args.secrets, allDevices);
  let random = Math.random;
  if (args.seed !== undefined) {
    let s = args.seed >>> 0;
    random = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  }
  const meter = new MeterClient(
    journal,
    sender,
    {
      source,
      loss: args.loss,
      corrupt: args.corrupt,
      window: args.window,
      maxAttempts: 5,
      secrets,
      retentionS,
      random,
      onProgress: (s) => {
        if (s.generated % 1000 < allDevices.length) log.info({ ...s }, 'progress');
      },
    },
    log,
  );
  const sync = args.sync
    ? new SyncClient(
        journal,
        {
          ...servers.sync.endpoints[0]!,
          pool: syncPool,
          devices: allDevices,
          retentionS,
          reconnect: true,
          secrets,
          // A replay (--csv, --start) holds the watermark at what it has still to journal.
          final: () => meter.final(),
          tls: syncTls,
        },
        log,
      )
    : undefined;
  if (sync)
    await sync.connect().catch((e: Error) => log.warn({ err: e.message }, 'sync service unreachable; will retry'));

  let stopping = false;
  let lingering = false;
  const stop = () => {
    // A second signal while sending gives up at once; while lingering for sync it ends the linger (below).
    if (stopping && !lingering) process.exit(1);
    stopping = true;
    meter.stop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const stats = await meter.run();
  log.info({ sent: stats.sent, acked: stats.acked }, 'stream done');
  if (sync && (args.linger > 0 || (args.duration === 0 && !stopping))) {
    lingering = true;
    await new Promise<void>((r) => {
      const t = args.linger > 0 ? setTimeout(r, args.linger * 1000) : undefined;
      process.once('SIGINT', () => (clearTimeout(t), r()));
      process.once('SIGTERM', () => (clearTimeout(t), r()));
    });
  }
  for (const stopOne of stopFollowing) stopOne();
  sync?.close();
  sender.close();
  await journal.close();
  const summary = {
    ...stats,
    repaired: sync?.stats.batchesResent ?? 0,
    syncRequests: sync?.stats.requests ?? 0,
    devices: allDevices.length,
  };
  log.info(summary, 'summary');
  process.stdout.write(
    `ec-client: sent ${stats.sent}, acked ${stats.acked}, failed ${stats.failed}, lost (injected) ` +
      `${stats.lost}, corrupted (injected) ${stats.corrupted}, repaired by sync ${summary.repaired}\n`,
  );
  process.exitCode = stats.failed > 0 ? 1 : 0;
}

/** --ca, --cert, --key, --servername: the TLS settings of SIP and sync; a file that cannot be read is bad usage. */
function readClientTls(args: ClientArgs): ClientTls {
  if ((args.cert === undefined) !== (args.key === undefined)) usageExit('--cert and --key go together');
  const read = (option: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      usageExit(`--${option} ${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  };
  return {
    ca: read('ca', args.ca),
    cert: read('cert', args.cert),
    key: read('key', args.key),
    servername: args.servername,
  };
}

/** The SIP and sync servers: --server / --sync-server (lists or SRV domains), else the config's one address. */
/** A server list, and for a domain how to look its SRV records up again (rejects on failure or no record). */
interface Servers {
  endpoints: Endpoint[];
  lookupAgain?: () => Promise<Endpoint[]>;
}

async function serversOf(
  args: ClientArgs,
  sipHost: string,
  sipPort: number,
  syncHost: string,
  syncPort: number,
): Promise<{ sip: Servers; sync: Servers }> {
  const parse = (option: string, value: string, port: number): ServerSpec => {
    try {
      return parseServerSpec(value, port);
    } catch (e) {
      usageExit(`--${option}: ${(e as Error).message}`);
    }
  };
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  if (args['dns-server'] !== undefined) {
    try {
      resolver.setServers(args['dns-server'].split(',').map((s) => s.trim()));
    } catch (e) {
      usageExit(`--dns-server: ${(e as Error).message}`);
    }
  }
  const NOT_OFFERED = "the domain's SRV records say the service is not offered there";
  const lookup = async (
    option: string,
    spec: ServerSpec,
    proto: 'udp' | 'tcp',
    service: string,
    port: number,
  ): Promise<Servers> => {
    const again = async () => {
      const found = await resolveEndpoints(spec, proto, { resolver, service, defaultPort: port });
      if (found.length === 0) throw new Error(NOT_OFFERED);
      return found;
    };
    let endpoints: Endpoint[];
    try {
      endpoints = await again();
    } catch (e) {
      if ((e as Error).message === NOT_OFFERED) usageExit(`--${option}: ${NOT_OFFERED}`);
      usageExit(`--${option}: DNS lookup failed (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    return spec.kind === 'srv' ? { endpoints, lookupAgain: again } : { endpoints };
  };
  if (args.server === undefined) {
    const sync =
      args['sync-server'] === undefined
        ? { endpoints: [{ host: syncHost, port: syncPort }] }
        : await lookup('sync-server', parse('sync-server', args['sync-server'], syncPort), 'tcp', 'ec-sync', syncPort);
    return { sip: { endpoints: [{ host: sipHost, port: sipPort }] }, sync };
  }
  const spec = parse('server', args.server, 5060);
  const streamed = args.transport === 'tcp' || args.transport === 'tls';
  const sip = await lookup('server', spec, streamed ? 'tcp' : 'udp', 'sip', 5060);
  let sync: Servers;
  if (args['sync-server'] !== undefined) {
    sync = await lookup('sync-server', parse('sync-server', args['sync-server'], syncPort), 'tcp', 'ec-sync', syncPort);
  } else if (spec.kind === 'srv') {
    sync = await lookup('server', spec, 'tcp', 'ec-sync', syncPort);
  } else {
    sync = { endpoints: [...new Set(sip.endpoints.map((e) => e.host))].map((host) => ({ host, port: syncPort })) };
  }
  return { sip, sync };
}

/**
 * Looks a domain's SRV records up again every `seconds` and hands a changed list to `apply`; a failed
 * lookup is logged and the list in use kept (a DNS outage must not stop a meter). Returns the stop.
 */
function followDns(
  what: string,
  servers: Servers,
  seconds: number,
  apply: (endpoints: Endpoint[]) => Promise<void>,
  log: Logger,
): () => void {
  const again = servers.lookupAgain;
  if (!again || seconds <= 0) return () => undefined;
  let current = servers.endpoints.map(endpointKey).join(',');
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    again()
      .then(async (found) => {
        const keys = found.map(endpointKey).join(',');
        if (keys === current) return;
        log.info({ [what]: found }, `${what} servers changed in DNS`);
        current = keys;
        await apply(found);
      })
      .catch((e: Error) => log.warn({ err: e.message }, `${what} SRV lookup failed; keeping the servers in use`))
      .finally(() => (busy = false));
  }, seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** --secret (every device) and --secrets FILE ("device secret" per line; # comments) as one map. */
function readSecrets(secret: string | undefined, file: string | undefined, devices: string[]): Map<string, string> {
  const secrets = new Map<string, string>();
  if (secret !== undefined) for (const d of devices) secrets.set(d, secret);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      usageExit(`--secrets ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    for (const [n, line] of text.split('\n').entries()) {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) continue;
      const m = /^(\S+)\s+(\S+)$/.exec(t);
      if (!m) usageExit(`--secrets ${file}: line ${n + 1} is not "device secret"`);
      secrets.set(m[1]!, m[2]!);
    }
  }
  return secrets;
}
