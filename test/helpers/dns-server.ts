import dns2 from 'dns2';

const { Packet } = dns2;

export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface TestDns {
  /** host:port for dns.Resolver.setServers / ec-client --dns-server. */
  address: string;
  /** Names asked, in order. */
  queries: string[];
  close(): Promise<void>;
}

/**
 * A real DNS server on 127.0.0.1 (UDP, a free port) that answers SRV queries from `records`
 * (name -> answers) and NXDOMAIN for any other name.
 */
export async function startTestDns(records: Record<string, SrvAnswer[]>): Promise<TestDns> {
  const queries: string[] = [];
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const q = request.questions[0];
      const answers = q ? records[q.name.toLowerCase()] : undefined;
      if (q) queries.push(q.name);
      if (q?.type !== Packet.TYPE.SRV || !answers) response.header.rcode = Packet.RCODE.NXDOMAIN;
      else
        for (const a of answers)
          // dns2's Resource type wants a toBuffer the encoder does not need for a plain record.
          response.answers.push({
            name: q.name,
            type: Packet.TYPE.SRV,
            class: Packet.CLASS.IN,
            ttl: 60,
            ...a,
          } as unknown as (typeof response.answers)[number]);
      void send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  return { address: `127.0.0.1:${addresses.udp!.port}`, queries, close: () => server.close() };
}
