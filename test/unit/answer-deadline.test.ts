import { expect } from 'chai';
import pino from 'pino';
import { SipRequestError } from '../../src/errors.js';
import { AnswerDeadlines } from '../../src/protocol/answer-deadline.js';
import { decodeDatagram } from '../../src/protocol/datagram-decoder.js';
import type { SipRequest } from '../../src/protocol/sip-request.js';
import type { ResponseSpec } from '../../src/protocol/sip-response.js';
import { TransactionLayer, type Link, type RequestHandler } from '../../src/protocol/transaction-layer.js';
import { buildMessage, parseResponse } from '../helpers/sip-client.js';

const limits = { maxHeaderBytes: 8192, maxBodyBytes: 65536 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A handler whose 200 comes `commitMs` after the request: a store with a slow write. */
function slowStore(commitMs: number): RequestHandler & { committed: number } {
  const h = {
    committed: 0,
    handle: (_req: SipRequest): Promise<ResponseSpec> =>
      sleep(commitMs).then(() => {
        h.committed++;
        return { status: 200, reason: 'OK', headers: {} };
      }),
    errorResponse: (e: unknown): ResponseSpec => {
      const err = e as SipRequestError;
      return { status: err.status, reason: err.reason, headers: { 'Retry-After': '5' } };
    },
  };
  return h;
}

function link(transport: Link['transport']): Link & { sent: string[] } {
  const sent: string[] = [];
  return {
    transport,
    remote: { address: '127.0.0.1', port: 5999 },
    sent,
    send: (d: Buffer) => void sent.push(d.toString('latin1')),
  };
}

describe('answer deadline for UDP MESSAGEs (ingest.max_answer_ms, protocol/answer-deadline.ts)', () => {
  const body = 'meter1|20260101000000|000000,1.0';

  it('answers 503 at the deadline, then nothing when the commit comes; a retransmission gets the 503', async () => {
    const store = slowStore(300);
    const layer = new TransactionLayer(store, { cacheSize: 100, answerDeadlineMs: 100 }, pino({ level: 'silent' }));
    const udp = link('udp');
    const wire = Buffer.from(buildMessage({ body, port: 5060, branch: 'z9hG4bK-dl-1' }), 'latin1');
    const t0 = Date.now();
    const done = layer.receive(decodeDatagram(wire, limits), udp);
    await sleep(200);
    expect(udp.sent, 'answered before T1').to.have.length(1);
    const first = parseResponse(udp.sent[0]!);
    expect(first.status).to.equal(503);
    expect(first.reason).to.match(/^Server overloaded: not stored within 85 ms \(ingest\.max_answer_ms\)/);
    expect(first.headers['retry-after']).to.equal('5');
    await done;
    expect(Date.now() - t0).to.be.at.least(290);
    expect(store.committed, 'the write went on').to.equal(1);
    expect(layer.lateAnswers, 'counted for ec_sip_late_answers_total').to.equal(1);
    expect(udp.sent, 'no 200 after the 503').to.have.length(1);
    void layer.receive(decodeDatagram(wire, limits), udp);
    expect(udp.sent).to.have.length(2);
    expect(parseResponse(udp.sent[1]!).status, 'the retransmission: the cached 503').to.equal(503);
    await layer.idle();
  });

  it('a commit within the deadline is answered 200, and TCP has no deadline', async () => {
    const layer = new TransactionLayer(
      slowStore(30),
      { cacheSize: 100, answerDeadlineMs: 100 },
      pino({ level: 'silent' }),
    );
    const udp = link('udp');
    await layer.receive(decodeDatagram(Buffer.from(buildMessage({ body, port: 5060 }), 'latin1'), limits), udp);
    expect(udp.sent.map((r) => parseResponse(r).status)).to.deep.equal([200]);
    const slow = new TransactionLayer(
      slowStore(250),
      { cacheSize: 100, answerDeadlineMs: 100 },
      pino({ level: 'silent' }),
    );
    const tcp = link('tcp');
    await slow.receive(
      decodeDatagram(Buffer.from(buildMessage({ body, port: 5060, transport: 'TCP' }), 'latin1'), limits),
      tcp,
    );
    expect(
      tcp.sent.map((r) => parseResponse(r).status),
      'TCP: no retransmissions to spare',
    ).to.deep.equal([200]);
  });

  it('fires in arrival order from one sweep, and a cancelled entry never fires', async () => {
    let now = 0;
    const d = new AnswerDeadlines(50, () => now);
    const fired: number[] = [];
    const entries = [0, 1, 2].map((i) => d.add(() => fired.push(i)));
    expect(entries[1]!.cancel()).to.equal(true);
    now = 60;
    await sleep(30); // the sweep runs every 3 ms at this deadline
    expect(fired).to.deep.equal([0, 2]);
    expect(entries[0]!.cancel(), 'fired: the deadline answered').to.equal(false);
    expect(d.size).to.equal(0);
    d.stop();
  });

  it('an entry is due three ticks early: answered by 0.9 of the deadline, the rest left for lag', async () => {
    let now = 1000;
    const d = new AnswerDeadlines(100, () => now);
    expect([d.tick, d.dueMs]).to.deep.equal([5, 85]);
    expect(new AnswerDeadlines(400).dueMs, 'the 503 reason at 400 ms').to.equal(340);
    let fired = 0;
    d.add(() => fired++);
    now = 1084;
    await sleep(25); // several sweeps
    expect(fired, 'not before 0.85 x the deadline').to.equal(0);
    now = 1085;
    await sleep(25);
    expect(fired, 'due at 0.85 x the deadline').to.equal(1);
    d.stop();
  });
});
