import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { QueryError } from '../errors.js';
import type { ConsumptionQuery } from '../query/consumption-query.js';
import { bucketsJson, consumptionText, CONTENT_TYPES, negotiate, rawJson } from '../query/formats.js';
import {
  consumptionParams,
  dayParams,
  deviceParam,
  lastParam,
  MAX_DAYS,
  spanParams,
  DAY_MS,
} from '../query/query-params.js';

export interface ReadApiOptions {
  query: ConsumptionQuery;
  /** Whether a device has ever been seen (the registry): others are answered 404. */
  knows: (device: string) => boolean;
}

type Req = FastifyRequest<{ Params: { id: string }; Querystring: Record<string, unknown> }>;

/**
 * GET /api/devices/:id/consumption, /daily and /sync (docs/operations.md has the API): parameters
 * checked first (400 with {error, message}), then the device (404), then the answer, JSON or, for
 * consumption, CSV / JSON Lines streamed a day or a minute of data at a time.
 */
export function registerReadApi(app: FastifyInstance, o: ReadApiOptions): void {
  const device = (req: Req): string => {
    const id = deviceParam(req.params.id);
    if (!o.knows(id)) throw new QueryError('EC_QUERY_UNKNOWN_DEVICE', `no device ${id} has been seen`);
    return id;
  };
  const handle =
    (fn: (req: Req, reply: FastifyReply) => Promise<unknown>) =>
    async (req: Req, reply: FastifyReply): Promise<unknown> => {
      try {
        return await fn(req, reply);
      } catch (e) {
        if (!(e instanceof QueryError)) throw e;
        return reply
          .code(e.httpStatus)
          .type(CONTENT_TYPES.json)
          .send(JSON.stringify({ error: e.code, message: e.message }));
      }
    };

  app.get(
    '/api/devices/:id/consumption',
    handle(async (req, reply) => {
      const format = negotiate(req.headers.accept, lastParam(req.query, 'format'));
      if (!format) throw new QueryError('EC_QUERY_BAD_PARAM', 'format must be json, csv or jsonl');
      const p = consumptionParams(req.params.id, req.query);
      device(req);
      reply.type(CONTENT_TYPES[format]);
      if (format !== 'json') return reply.send(Readable.from(consumptionText(format, p, o.query)));
      const answer =
        p.step === 'raw'
          ? await rawJson(p, o.query.raw(p.device, p.from, p.to))
          : await bucketsJson(p, o.query.buckets(p.device, p.step, p.from, p.to));
      return reply.send(JSON.stringify(answer));
    }),
  );

  app.get(
    '/api/devices/:id/daily',
    handle(async (req, reply) => {
      const p = dayParams(req.params.id, req.query);
      device(req);
      const days = [];
      for await (const d of o.query.daily(p.device, p.from, p.to)) days.push(d);
      return reply.type(CONTENT_TYPES.json).send(JSON.stringify({ device: p.device, from: p.from, to: p.to, days }));
    }),
  );

  app.get(
    '/api/devices/:id/sync',
    handle(async (req, reply) => {
      const p = spanParams(req.params.id, req.query, {
        maxSpanMs: MAX_DAYS * DAY_MS,
        defaultSpanMs: DAY_MS,
        alignMs: 1000,
        what: 'the request',
      });
      device(req);
      const periods = [];
      for await (const chunk of o.query.sync(p.device, p.from, p.to)) periods.push(...chunk);
      return reply.type(CONTENT_TYPES.json).send(JSON.stringify({ device: p.device, from: p.from, to: p.to, periods }));
    }),
  );
}
