/**
 * Heads shaped to make backtracking parsers slow: long runs of whitespace, tokens or separators
 * where a regex would try every split (the `sip` package's AOR, Via, auth and header-line regexes
 * took seconds to minutes on some of these). Used by the unit test of the parsers, the event-loop
 * delay test against a real server, and the fuzz script's corpus.
 */

const PREFIX = [
  'MESSAGE sip:ec@127.0.0.1:5060 SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-patho',
  'Call-ID: patho@127.0.0.1',
  'CSeq: 1 MESSAGE',
];

export interface PathologicalHead {
  name: string;
  head: string;
}

/** One head per shape, each about `bytes` long (start line and headers, no blank line). */
export function PATHOLOGICAL_HEADS(bytes: number): PathologicalHead[] {
  const n = Math.max(16, bytes - 200);
  const fill = (unit: string) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  const head = (...lines: string[]) => [...PREFIX, ...lines].join('\r\n');
  const shapes: [string, () => string][] = [
    ['From "<" + spaces', () => head(`From: <${fill(' ')}`, 'To: <sip:ec@h>')],
    ['To "<" + tabs', () => head('From: <sip:m@h>;tag=1', `To: <${fill('\t')}`)],
    ['Contact "<" + spaces + ">"', () => head('From: <sip:m@h>;tag=1', 'To: <sip:ec@h>', `Contact: <${fill(' ')}>`)],
    ['display-name tokens, no "<"', () => head(`From: ${fill('a ')}`, 'To: <sip:ec@h>')],
    ['display-name tokens + "<" + spaces', () => head(`From: ${fill('a ')}<${' '.repeat(64)}`, 'To: <sip:ec@h>')],
    ['unterminated quoted name', () => head(`From: "${fill('\\"')}`, 'To: <sip:ec@h>')],
    ['params without end', () => head(`From: <sip:m@h>${fill(';a')}`, 'To: <sip:ec@h>')],
    ['params with spaces', () => head(`From: <sip:m@h>${fill(' ; a = b')}`, 'To: <sip:ec@h>')],
    ['Via of spaces', () => head(`Via: SIP/2.0/UDP ${fill(' ')}x`, 'From: <sip:m@h>;tag=1', 'To: <sip:ec@h>')],
    ['Via of separators', () => head(`Via: ${fill('SIP / ')}`, 'From: <sip:m@h>;tag=1', 'To: <sip:ec@h>')],
    ['Via list of commas', () => head(`Via: SIP/2.0/UDP h${fill(' ,')}`, 'From: <sip:m@h>;tag=1')],
    ['name then spaces, no colon', () => head('From: <sip:m@h>;tag=1', `X-Long${fill(' ')}`)],
    ['Authorization of spaces', () => head('From: <sip:m@h>;tag=1', `Authorization: Digest ${fill(' ')}a=`)],
    ['Authorization of pairs', () => head('From: <sip:m@h>;tag=1', `Authorization: Digest ${fill('a=b, ')}`)],
    ['CSeq of spaces', () => [PREFIX[0], PREFIX[1], `CSeq: 1${fill(' ')}`, 'From: <sip:m@h>;tag=1'].join('\r\n')],
    ['many short header lines', () => head('From: <sip:m@h>;tag=1', fill('a: b\r\n').replace(/\r\n?$/, ''))],
    ['many folds', () => head('From: <sip:m@h>;tag=1', `Subject: s${fill('\r\n x')}`)],
    ['bare CRs', () => head('From: <sip:m@h>;tag=1', `Subject: ${fill('\r')}`)],
    ['start line of spaces', () => [`MESSAGE ${fill(' ')}SIP/2.0`, ...PREFIX.slice(1)].join('\r\n')],
    ['Content-Length of spaces', () => head('From: <sip:m@h>;tag=1', `Content-Length:${fill(' ')}1`)],
  ];
  return shapes.map(([name, make]) => ({ name, head: make() }));
}
