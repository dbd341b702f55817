import { promises as dns } from 'node:dns';
import net from 'node:net';

/** One receiver a meter may send to. */
export interface Endpoint {
  host: string;
  port: number;
}

export const SIP_DEFAULT_PORT = 5060;

/** What a server spec lists: endpoints with their ports, or one bare name to look up in DNS (SRV). */
export type ServerSpec = { kind: 'list'; endpoints: Endpoint[] } | { kind: 'srv'; name: string };

/**
 * Parses `--server`: `host:port[,host:port...]` (an IPv6 address in brackets) is an ordered list, most
 * preferred first; a single name without a port is a domain whose SRV records give the list (RFC 3263 4.2).
 * A single IP address without a port means that address on 5060 (there is nothing to look up).
 */
export function parseServerSpec(spec: string, defaultPort = SIP_DEFAULT_PORT): ServerSpec {
  const parts = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new Error('no server given');
  const endpoints = parts.map((p) => parseEndpoint(p));
  if (parts.length === 1 && endpoints[0]!.port === undefined && net.isIP(endpoints[0]!.host) === 0) {
    return { kind: 'srv', name: endpoints[0]!.host };
  }
  return { kind: 'list', endpoints: endpoints.map((e) => ({ host: e.host, port: e.port ?? defaultPort })) };
}

function parseEndpoint(s: string): { host: string; port?: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(s);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new Error(`${JSON.stringify(s)} is not host[:port] (an IPv6 address in brackets)`);
  }
  return { host: m[1] ?? m[2]!, port };
}

/** The subset of node:dns's Resolver that the lookup uses (tests point it at their own DNS server). */
export interface SrvResolver {
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
}

/**
 * RFC 3263 4.2 for a bare name: the SRV records of `_<service>._<proto>.<name>` ordered per RFC 2782
 * (lowest priority first; within a priority, a weighted random order); without SRV records, the name itself
 * on the default port (RFC 3263 4.2: "use the A/AAAA records with the default port").
 */
export async function resolveEndpoints(
  spec: ServerSpec,
  proto: 'udp' | 'tcp',
  o: { resolver?: SrvResolver; service?: string; defaultPort?: number; random?: () => number } = {},
): Promise<Endpoint[]> {
  if (spec.kind === 'list') return spec.endpoints;
  const resolver = o.resolver ?? new dns.Resolver();
  let records: { name: string; port: number; priority: number; weight: number }[];
  try {
    records = await resolver.resolveSrv(`_${o.service ?? 'sip'}._${proto}.${spec.name}`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTFOUND' && code !== 'ENODATA') throw e;
    records = [];
  }
  // A single "." target means the service is decidedly not available at this domain (RFC 2782).
  if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) return [];
  if (records.length === 0) return [{ host: spec.name, port: o.defaultPort ?? SIP_DEFAULT_PORT }];
  return orderSrv(records, o.random ?? Math.random).map((r) => ({ host: r.name, port: r.port }));
}

/** RFC 2782's selection: priorities ascending; inside one, repeatedly pick by running sum of weights. */
export function orderSrv<T extends { priority: number; weight: number }>(records: T[], random: () => number): T[] {
  const byPriority = new Map<number, T[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Zero-weight records first, as the RFC asks, so they have a small chance when others have weight.
    const left = [...byPriority.get(priority)!].sort((a, b) => a.weight - b.weight);
    while (left.length) {
      const total = left.reduce((n, r) => n + r.weight, 0);
      const pick = Math.floor(random() * (total + 1));
      let sum = 0;
      let i = left.findIndex((r) => (sum += r.weight) >= pick);
      if (i < 0) i = left.length - 1;
      out.push(left.splice(i, 1)[0]!);
    }
  }
  return out;
}
