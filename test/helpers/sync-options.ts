import type { SyncServiceOptions } from '../../src/sync/sync-service.js';

/**
 * A sync service on a free loopback port for tests that construct one directly: anonymous meters
 * (no credentials, none required), no schedule (the test runs rounds), nothing deleted.
 */
export function testSyncOptions(
  o: Pick<SyncServiceOptions, 'periodS' | 'now'> & Partial<SyncServiceOptions>,
): SyncServiceOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    graceS: 60,
    auth: { realm: 'ec-server', required: false, credentials: { get: () => undefined } },
    deleteExtraneous: false,
    requestTimeoutMs: 1000,
    concurrency: 1,
    schedule: false,
    ...o,
  };
}
