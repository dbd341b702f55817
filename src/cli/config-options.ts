import type { Argv } from 'yargs';
import { KEY_INDEX } from '../config/config-keys.js';
import { loadConfig, type LoadedConfig } from '../config/load-config.js';
import { ConfigError } from '../errors.js';

/** Options every bin shares to find the same config and store as the server. */
export function withConfigOptions<T>(y: Argv<T>) {
  return y
    .option('config', {
      alias: 'c',
      type: 'string',
      describe: 'Config file (INI); default ./config/config.properties if present',
    })
    .option('set', {
      type: 'string',
      array: true,
      describe: 'Override any config key: --set sip.port=5060 (repeatable)',
    })
    .option('port', { type: 'number', describe: 'SIP port (sip.port)' })
    .option('listen', { type: 'string', describe: 'Address to bind (sip.listen_addr)' })
    .option('storage', { type: 'string', describe: 'Storage backend: sqlite | cassandra (storage.backend)' })
    .option('data-dir', { type: 'string', describe: 'Embedded store directory (storage.path)' })
    .option('log-level', { type: 'string', describe: 'fatal|error|warn|info|debug|trace|silent (log.level)' });
}

export interface ConfigArgs {
  config?: string;
  set?: string[];
  port?: number;
  listen?: string;
  storage?: string;
  'data-dir'?: string;
  'log-level'?: string;
}

/** Defaults < file < environment < flags. Throws ConfigError naming file/flag and key. */
export function configFromArgs(args: ConfigArgs, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const overrides: Record<string, string> = {};
  for (const pair of args.set ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError('command line --set', undefined, `${JSON.stringify(pair)} is not key=value`);
    const key = pair.slice(0, eq).trim();
    if (!KEY_INDEX.has(key)) throw new ConfigError('command line --set', key, 'unknown key');
    overrides[key] = pair.slice(eq + 1);
  }
  const flag = (value: string | number | boolean | undefined, key: string): void => {
    if (value !== undefined) overrides[key] = String(value);
  };
  flag(args.port, 'sip.port');
  flag(args.listen, 'sip.listen_addr');
  flag(args.storage, 'storage.backend');
  flag(args['data-dir'], 'storage.path');
  flag(args['log-level'], 'log.level');
  return loadConfig({ configPath: args.config, env, overrides });
}
