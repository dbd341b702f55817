import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { epochSecondToParts, recordsChecksum } from '../../src/domain/batch.js';
import { freePort, runSipp, SIPP_FIXTURES, writeInjection } from './sipp.js';
import type { TestServer } from './test-server.js';

/** sipp (a real SIP peer) sends seed-format MESSAGEs; every one must be answered 200 and stored exactly. */
export const CALLS = 1000;

interface Sent {
  device: string;
  second: number;
  records: string;
}

export function injectionRows(device: string, firstSecond: number, n: number): { rows: string[][]; sent: Sent[] } {
  const rows: string[][] = [];
  const sent: Sent[] = [];
  for (let i = 0; i < n; i++) {
    const { ec_date, ec_time } = epochSecondToParts(firstSecond + i);
    const us1 = String((i * 37) % 500_000);
    const us2 = String(500_000 + ((i * 91) % 499_999));
    const v1 = (i * 1.25).toFixed(3);
    const v2 = `-${(i % 97) + 0.5}e-2`;
    const records = `${us1},${v1};${us2},${v2}`;
    rows.push([device, ec_date + ec_time, us1, v1, us2, v2, recordsChecksum(records), String(i + 1)]);
    sent.push({ device, second: firstSecond + i, records });
  }
  return { rows, sent };
}

async function expectStored(server: TestServer, sent: Sent[]): Promise<void> {
  const device = sent[0]!.device;
  const from = sent[0]!.second;
  const to = sent[sent.length - 1]!.second + 1;
  const rows = [];
  for (let t = from; t < to; t += 3600)
    rows.push(...(await server.store.readBatches({ device_id: device, from: t, to: Math.min(to, t + 3600) })));
  expect(rows).to.have.length(sent.length);
  rows.forEach((row, i) => {
    const s = sent[i]!;
    const [r1, r2] = s.records.split(';');
    const { ec_date, ec_time } = epochSecondToParts(s.second);
    expect(row).to.include({
      device_id: device,
      ec_date,
      ec_time,
      start_us: r1!.split(',')[0]!.padStart(6, '0'),
      end_us: r2!.split(',')[0]!.padStart(6, '0'),
      ec_consumption_values: s.records,
      values_count: 2,
      values_checksum: recordsChecksum(s.records),
      batch_seq: i + 1,
    });
  });
}

export async function sippIngest(server: TestServer, transport: 'udp' | 'tcp', device: string): Promise<void> {
  const first = Date.UTC(2026, 0, 1, 0, 0, 0) / 1000;
  const { rows, sent } = injectionRows(device, first, CALLS);
  const inf = join(server.dir, `${transport}.csv`);
  writeInjection(inf, rows);
  const screen = join(server.dir, `${transport}-screen.log`);
  const errors = join(server.dir, `${transport}-errors.log`);
  const run = await runSipp([
    `127.0.0.1:${server.port}`,
    '-sf',
    join(SIPP_FIXTURES, 'message-uac.xml'),
    '-inf',
    inf,
    '-t',
    transport === 'udp' ? 'u1' : 't1',
    '-i',
    '127.0.0.1',
    '-p',
    String(await freePort()),
    '-m',
    String(CALLS),
    '-r',
    '500',
    '-l',
    '200',
    '-max_retrans',
    '10',
    '-trace_screen',
    '-screen_file',
    screen,
    '-trace_err',
    '-error_file',
    errors,
  ]);
  expectEveryCallSucceeded(run, screen, errors, CALLS);
  await expectStored(server, sent);
}

/** sipp exited 0 and its screen file reports `calls` successful calls and none failed. */
export function expectEveryCallSucceeded(
  run: { code: number | null; stdout: string; stderr: string },
  screen: string,
  errors: string,
  calls: number,
): void {
  const screenText = existsSync(screen) ? readFileSync(screen, 'utf8') : run.stdout;
  const errorText = existsSync(errors) ? readFileSync(errors, 'utf8').slice(0, 2000) : '';
  expect(run.code, `sipp exit code (0 = every call succeeded)\n${errorText}\n${run.stderr.slice(0, 2000)}`).to.equal(0);
  const ok = /Successful call\s+\|\s+\d+\s+\|\s+(\d+)/.exec(screenText);
  const failed = /Failed call\s+\|\s+\d+\s+\|\s+(\d+)/.exec(screenText);
  expect(Number(ok?.[1]), 'successful calls reported by sipp').to.equal(calls);
  expect(Number(failed?.[1] ?? 0), 'failed calls reported by sipp').to.equal(0);
}
