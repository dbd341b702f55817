import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { BearerTokens } from './bearer-tokens.js';
import { isDashboardFile, registerDashboard } from './dashboard.js';
import { registerReadApi, type ReadApiOptions } from './read-api.js';

export interface HttpOptions {
  host: string;
  port: number;
  /** Bearer tokens accepted on /metrics; empty: /metrics is open (the caller decided that is safe). */
  tokens: readonly string[];
  /** /readyz: whether the server serves (SIP bound, not stopping) and the store answers. */
  ready: () => Promise<{ ready: boolean; why?: string }>;
  metrics: () => Promise<{ contentType: string; text: string }>;
  /** GET /api/devices: a page of the device registry (behind the same tokens as /metrics). */
  devices?: (q: DevicesQuery) => unknown;
  /** GET /api/devices/:id/consumption, /daily, /sync (read-api.ts), behind the same tokens. */
  read?: ReadApiOptions;
}

export interface DevicesQuery {
  state: 'online' | 'offline' | undefined;
  limit: number;
  after: string | undefined;
}

/** GET /api/devices without limit=. */
export const DEFAULT_DEVICES_LIMIT = 100;
const MAX_DEVICES_LIMIT = 1000;

/** The query of GET /api/devices, or why it is refused (400). */
export function devicesQuery(q: Record<string, unknown>): DevicesQuery | string {
  /** The last value of a query parameter given once or repeated (fastify's parser gives strings). */
  const one = (k: string): string | undefined => {
    const v = q[k];
    const last: unknown = Array.isArray(v) ? v[v.length - 1] : v;
    return typeof last === 'string' ? last : undefined;
  };
  const state = one('state');
  if (state !== undefined && state !== 'online' && state !== 'offline') return 'state must be online or offline';
  const limitText = one('limit');
  const limit = limitText === undefined ? DEFAULT_DEVICES_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DEVICES_LIMIT) {
    return `limit must be an integer from 1 to ${MAX_DEVICES_LIMIT}`;
  }
  const after = one('after');
  if (after !== undefined && (after.length === 0 || after.length > 64)) return 'after must be a device id';
  return { state, limit, after };
}

/** Routes that never need a token: probes learn only up or down. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz']);

/**
 * The read-only HTTP endpoints (fastify): /healthz (the process answers), /readyz (it serves and its store
 * answers), /metrics (Prometheus text format) and /api/devices (the device registry, JSON), both behind a
 * bearer token when tokens are configured, and the web dashboard under /dashboard/ (its files are open; the
 * API calls it makes carry the token).
 */
export class HttpServer {
  private readonly app: FastifyInstance;

  constructor(
    private readonly options: HttpOptions,
    log: Logger,
  ) {
    const o = options;
    const tokens = new BearerTokens(o.tokens);
    // No request logging: scrapes every few seconds would drown the log.
    this.app = Fastify({ logger: false, return503OnClosing: true, bodyLimit: 1024 });
    this.app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0]!;
      if (tokens.empty || OPEN_ROUTES.has(path) || isDashboardFile(path)) return;
      if (!tokens.accepts(req.headers.authorization)) {
        await reply
          .code(401)
          .header('WWW-Authenticate', 'Bearer realm="ec-server"')
          .type('text/plain; charset=utf-8')
          .send('a bearer token is required (http.tokens)\n');
      }
    });
    this.app.get('/healthz', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));
    this.app.get('/readyz', async (_req, reply) => {
      const r = await o.ready();
      return reply
        .code(r.ready ? 200 : 503)
        .type('text/plain; charset=utf-8')
        .send(r.ready ? 'ready\n' : `not ready: ${r.why ?? 'unknown'}\n`);
    });
    this.app.get('/metrics', async (_req, reply) => {
      const { contentType, text } = await o.metrics();
      return reply.type(contentType).send(text);
    });
    // The dashboard's pages and scripts (no data in them); they call the API below with the token.
    void this.app.register(registerDashboard);
    const devices = o.devices;
    if (devices) {
      this.app.get('/api/devices', async (req, reply) => {
        const q = devicesQuery(req.query as Record<string, unknown>);
        if (typeof q === 'string') return reply.code(400).type('text/plain; charset=utf-8').send(`${q}\n`);
        return reply.type('application/json; charset=utf-8').send(JSON.stringify(devices(q)));
      });
    }
    if (o.read) registerReadApi(this.app, o.read);
    this.app.setErrorHandler((err: { message?: string; statusCode?: number }, _req, reply) => {
      const status = err.statusCode ?? 500;
      if (status >= 500) log.warn({ err: err.message }, 'http request failed');
      void reply
        .code(status)
        .type('text/plain; charset=utf-8')
        .send(`${err.message ?? 'error'}\n`);
    });
  }

  /** Listens; resolves with the port bound (differs from options.port when it is 0). */
  async listen(): Promise<number> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    return (this.app.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}
