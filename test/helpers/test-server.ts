import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { loadConfig, type Config } from '../../src/config/load-config.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server.js';

export interface TestServer extends RunningServer {
  dir: string;
  config: Config;
  cleanup(): Promise<void>;
}

/** A real server in this process: real sockets on a free port, a real SQLite file in a temp dir. */
export async function startTestServer(
  overrides: Record<string, string> = {},
  options: ServerOptions = {},
  /** Where the server logs (default: silent, or EC_TEST_LOG's level). */
  log: Logger = pino({ level: process.env.EC_TEST_LOG ?? 'silent' }),
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ec-server-test-'));
  const { config } = loadConfig({
    configPath: null,
    overrides: {
      'sip.port': '0',
      'sync.port': '0',
      'http.port': '0',
      'storage.path': join(dir, 'data'),
      'log.level': 'silent',
      ...overrides,
    },
  });
  const server = await startServer(config, log, undefined, { syncSchedule: false, ...options });
  return {
    ...server,
    dir,
    config,
    cleanup: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
