import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { CONFIG_KEYS } from '../../src/config/config-keys.js';
import { loadConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors.js';
import { FIXTURES } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ec-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('loads the original config file, trailing comments and all', () => {
    const { config, warnings } = loadConfig({ configPath: join(FIXTURES, 'config/original.properties'), env: {} });
    expect(config.sip.publicAddr).to.equal('127.0.0.1');
    expect(config.sip.port).to.equal(34567);
    expect(config.cassandra.hosts).to.deep.equal(['127.0.0.1']);
    expect(config.cassandra.port).to.equal(9042);
    expect(config.cassandra.keyspace).to.equal('mykeyspace');
    expect(config.sync).to.include({ freqMinutes: 30, ip: '127.0.0.1', port: 27979, enabled: true });
    expect(config.storage.backend).to.equal('sqlite');
    expect(warnings).to.deep.equal([]);
  });

  it('loads the shipped config/config.properties without warnings', () => {
    const { config, warnings } = loadConfig({ configPath: join(FIXTURES, '../../config/config.properties'), env: {} });
    expect(config.sip.port).to.equal(34567);
    expect(config.sip.transports).to.deep.equal(['udp', 'tcp']);
    expect(warnings).to.deep.equal([]);
  });

  it('applies defaults < file < environment < command line', () => {
    const f = file('p.properties', '[SIP]\nsip.port=1111\nsip.retry_after=9\n[Log]\nlog.level=debug\n');
    const { config } = loadConfig({
      configPath: f,
      env: { EC_SIP_PORT: '2222', EC_LOG_LEVEL: 'warn' },
      overrides: { 'sip.port': '3333' },
    });
    expect(config.sip.port).to.equal(3333);
    expect(config.log.level).to.equal('warn');
    expect(config.sip.retryAfterS).to.equal(9);
    expect(config.sip.maxHeaderBytes).to.equal(8192);
  });

  it('names the file and the key of a bad value', () => {
    const f = file('bad.properties', '[SIP]\nsip.port=34x67 # typo\n');
    const e = configError(() => loadConfig({ configPath: f, env: {} }));
    expect(e.message).to.equal(`config file ${f}, key sip.port: "34x67" is not an integer`);
  });

  it('names the environment variable of a bad value', () => {
    const e = configError(() => loadConfig({ configPath: null, env: { EC_STORAGE_BACKEND: 'mongo' } }));
    expect(e.message).to.match(
      /environment variable EC_STORAGE_BACKEND, key storage.backend: "mongo" is not one of sqlite, cassandra/,
    );
  });

  it('rejects out-of-range values and bad lists', () => {
    expect(configError(() => loadConfig({ configPath: null, overrides: { 'sip.port': '70000' } })).message).to.match(
      /out of range 0..65535/,
    );
    expect(
      configError(() => loadConfig({ configPath: null, overrides: { 'sip.transports': 'udp,sctp' } })).message,
    ).to.match(/sctp/);
  });

  it('ingest.max_answer_ms: auto is 400 ms on Cassandra, off on sqlite; a number wins; a bad word is named', () => {
    const answer = (overrides: Record<string, string>) =>
      loadConfig({ configPath: null, env: {}, overrides }).config.ingest.maxAnswerMs;
    expect(answer({}), 'sqlite, the default').to.equal(0);
    expect(answer({ 'storage.backend': 'cassandra' })).to.equal(400);
    expect(answer({ 'storage.backend': 'cassandra', 'ingest.max_answer_ms': 'AUTO' })).to.equal(400);
    expect(answer({ 'storage.backend': 'cassandra', 'ingest.max_answer_ms': '0' }), 'off').to.equal(0);
    expect(answer({ 'storage.backend': 'sqlite', 'ingest.max_answer_ms': '300' })).to.equal(300);
    const e = configError(() => loadConfig({ configPath: null, overrides: { 'ingest.max_answer_ms': 'soon' } }));
    expect(e.message).to.match(/ingest\.max_answer_ms.*"soon" is not an integer or auto/);
  });

  it('http.tokens: a comma list kept as written (case matters), each 16+ characters; none echoed in errors', () => {
    const { config } = loadConfig({
      configPath: null,
      overrides: { 'http.tokens': ' AbCdEf0123456789 , second-Token-XYZ-0001,AbCdEf0123456789' },
    });
    expect(config.http).to.deep.include({
      enabled: true,
      listenAddr: '127.0.0.1',
      port: 34580,
      tokens: ['AbCdEf0123456789', 'second-Token-XYZ-0001'],
      allowAnonymous: false,
    });
    expect(loadConfig({ configPath: null }).config.http.tokens).to.deep.equal([]);
    const short = () => loadConfig({ configPath: null, overrides: { 'http.tokens': 'long-enough-token-1,secret123' } });
    expect(short).to.throw(ConfigError, /key http\.tokens: each token must be 16 or more characters/);
    try {
      short();
    } catch (e) {
      expect((e as Error).message).to.not.include('secret123');
    }
  });

  it('names an unreadable file', () => {
    const missing = join(dir, 'nope.properties');
    expect(configError(() => loadConfig({ configPath: missing })).message).to.equal(
      `config file ${missing}: cannot be read (ENOENT)`,
    );
  });

  it('warns about unknown keys and keys in the wrong section, and still loads', () => {
    const f = file('odd.properties', '[SIP]\nsip.prot=1\ncassandra.port=9999\n');
    const { config, warnings } = loadConfig({ configPath: f, env: {} });
    expect(config.cassandra.port).to.equal(9999);
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.match(/unknown key sip.prot in \[SIP\]/);
    expect(warnings[1]).to.match(/cassandra.port found in \[SIP\], expected in \[CassandraDB\]/);
  });

  it('docs/configuration.md documents every key with its default', () => {
    const doc = readFileSync(join(FIXTURES, '../../docs/configuration.md'), 'utf8');
    for (const k of CONFIG_KEYS) {
      expect(doc, k.key).to.include(`\`${k.key}\``);
      const def = k.default === '' ? '(empty)' : `\`${k.default}\``;
      expect(doc, `${k.key} default`).to.include(`| \`${k.key}\` | ${def} |`);
    }
  });
});
