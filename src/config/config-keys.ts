/**
 * Every configuration key ec-server knows: its section in config.properties, built-in default,
 * type and meaning. docs/configuration.md documents the same table (a test keeps them in step).
 * The first keys of each section are the original prototype's and keep its names and defaults.
 */

export type KeyKind =
  | { type: 'string'; nonEmpty?: boolean }
  /** words: values taken besides an integer, resolved by the loader (e.g. `auto`). */
  | { type: 'int'; min: number; max: number; words?: readonly string[] }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'list'; values?: readonly string[] };

/**
 * ingest.max_answer_ms's `auto` on Cassandra: under T1 (500 ms) with room for the socket wait and the loop's
 * lag. Measured: no retransmission past 2x capacity on one node and on three (docs/performance.md).
 */
export const CASSANDRA_ANSWER_MS = 400;

export interface KeyDef {
  key: string;
  section: string;
  default: string;
  kind: KeyKind;
  doc: string;
}

const port = { type: 'int', min: 0, max: 65535 } as const;

export const CONFIG_KEYS: readonly KeyDef[] = [
  {
    key: 'sip.public_addr',
    section: 'SIP',
    default: '127.0.0.1',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Address meters send to; also the listen address unless sip.listen_addr is set.',
  },
  {
    key: 'sip.port',
    section: 'SIP',
    default: '34567',
    kind: port,
    doc: 'SIP port, UDP and TCP (0 = pick a free port, for tests).',
  },
  {
    key: 'sip.listen_addr',
    section: 'SIP',
    default: '',
    kind: { type: 'string' },
    doc: 'Address to bind (e.g. 0.0.0.0); empty = sip.public_addr.',
  },
  {
    key: 'sip.transports',
    section: 'SIP',
    default: 'udp,tcp',
    kind: { type: 'list', values: ['udp', 'tcp'] },
    doc: 'Transports to listen on. RFC 3261 requires both.',
  },
  {
    key: 'sip.max_header_bytes',
    section: 'SIP',
    default: '8192',
    kind: { type: 'int', min: 256, max: 65535 },
    doc: 'Largest request head (start line + headers); larger is answered 513.',
  },
  {
    key: 'sip.max_body_bytes',
    section: 'SIP',
    default: '1048576',
    kind: { type: 'int', min: 64, max: 16777216 },
    doc: 'Largest body; larger is answered 413 (over TCP the connection is then closed).',
  },
  {
    key: 'sip.tcp_idle_timeout',
    section: 'SIP',
    default: '300',
    kind: { type: 'int', min: 1, max: 86400 },
    doc: 'Seconds a TCP connection may stay silent before it is closed.',
  },
  {
    key: 'sip.tcp_max_connections',
    section: 'SIP',
    default: '10000',
    kind: { type: 'int', min: 1, max: 1000000 },
    doc: 'Concurrent TCP connections; more are refused.',
  },
  {
    key: 'sip.tcp_max_connections_per_source',
    section: 'SIP',
    default: '0',
    kind: { type: 'int', min: 0, max: 1000000 },
    doc:
      'Concurrent TCP connections from one address; more are closed at once. 0 = only ' +
      'sip.tcp_max_connections applies (the fleet benchmark opens thousands from 127.0.0.1).',
  },
  {
    key: 'sip.tcp_request_timeout',
    section: 'SIP',
    default: '60',
    kind: { type: 'int', min: 1, max: 3600 },
    doc:
      'Seconds a TCP request may take from its first byte to its last; a connection still in the middle of a ' +
      'request then is closed (a byte now and then does not hold it open).',
  },
  {
    key: 'sip.tcp_max_unsent_bytes',
    section: 'SIP',
    default: '1048576',
    kind: { type: 'int', min: 4096, max: 1073741824 },
    doc:
      'Bytes of responses a TCP connection may have waiting to be sent (its peer does not read them) before ' +
      'the server stops reading its requests; reading resumes once they drain.',
  },
  {
    key: 'sip.tls_port',
    section: 'SIP',
    default: '5061',
    kind: port,
    doc:
      'SIP over TLS port (TCP), listening when tls.certificate and tls.key are set; the same framing, bounds ' +
      '(sip.tcp_*) and handling as TCP (0 = pick a free port, for tests).',
  },
  {
    key: 'sip.transaction_cache_size',
    section: 'SIP',
    default: '65536',
    kind: { type: 'int', min: 0, max: 10000000 },
    doc: 'UDP transactions remembered (32 s each) to answer retransmissions without storing twice.',
  },
  {
    key: 'sip.transaction_cache_bytes',
    section: 'SIP',
    default: '67108864',
    kind: { type: 'int', min: 65536, max: 17179869184 },
    doc:
      'Bytes of UDP transactions remembered (keys and responses); beyond it the oldest are forgotten first, ' +
      'as beyond sip.transaction_cache_size.',
  },
  {
    key: 'sip.retry_after',
    section: 'SIP',
    default: '5',
    kind: { type: 'int', min: 1, max: 3600 },
    doc: 'Seconds in the Retry-After of a 503.',
  },
  {
    key: 'sip.rate_limit',
    section: 'SIP',
    default: '0',
    kind: { type: 'int', min: 0, max: 10000000 },
    doc:
      'Requests per second one source address may send (token bucket; every request but ACK and ' +
      'retransmissions); over it: 503 with Retry-After. 0 = off (the default: the benchmarks send 30,000/s ' +
      'from 127.0.0.1). Meters send about 1/s each: behind one NAT address, allow for all of them.',
  },
  {
    key: 'sip.rate_limit_burst',
    section: 'SIP',
    default: '100',
    kind: { type: 'int', min: 1, max: 10000000 },
    doc: 'Requests one source address may send at once before sip.rate_limit applies (the size of its bucket).',
  },
  {
    key: 'sip.device_rate_limit',
    section: 'SIP',
    default: '0',
    kind: { type: 'int', min: 0, max: 10000000 },
    doc:
      'MESSAGEs per second one authenticated device may send (token bucket, checked after authentication: a ' +
      "forged device id cannot use up a real meter's bucket); over it: 503 with Retry-After, nothing stored. " +
      '0 = off (the default: a meter catching up after an outage sends as fast as it is answered, and the ' +
      'storage.max_queued_* bounds already protect the server). Anonymous MESSAGEs: sip.rate_limit only.',
  },
  {
    key: 'sip.device_rate_limit_burst',
    section: 'SIP',
    default: '100',
    kind: { type: 'int', min: 1, max: 10000000 },
    doc: 'MESSAGEs one device may send at once before sip.device_rate_limit applies (the size of its bucket).',
  },

  {
    key: 'tls.certificate',
    section: 'TLS',
    default: '',
    kind: { type: 'string' },
    doc:
      'PEM file of the server certificate (SIP over TLS on sip.tls_port, and sync when sync.tls=true); empty = ' +
      'no TLS. Read at start: a file that cannot be read, or does not match tls.key, stops the start.',
  },
  {
    key: 'tls.key',
    section: 'TLS',
    default: '',
    kind: { type: 'string' },
    doc: 'PEM file of the private key of tls.certificate (keep it readable by the server only).',
  },
  {
    key: 'tls.ca',
    section: 'TLS',
    default: '',
    kind: { type: 'string' },
    doc: 'PEM file of intermediate CA certificates sent after tls.certificate (the chain); empty = none.',
  },
  {
    key: 'tls.client_certificates',
    section: 'TLS',
    default: 'none',
    kind: { type: 'enum', values: ['none', 'request', 'require'] },
    doc:
      'Client certificates: none; request (asked for; a connection without one is accepted, one whose ' +
      'certificate tls.client_ca did not sign is closed); require (a connection without a valid one is closed).',
  },
  {
    key: 'tls.client_ca',
    section: 'TLS',
    default: '',
    kind: { type: 'string' },
    doc: 'PEM file of the CAs that sign client certificates (required unless tls.client_certificates=none).',
  },
  {
    key: 'tls.handshake_timeout',
    section: 'TLS',
    default: '10',
    kind: { type: 'int', min: 1, max: 300 },
    doc: 'Seconds a TLS connection may take to complete its handshake before it is closed (SIP and sync).',
  },

  {
    key: 'storage.backend',
    section: 'Storage',
    default: 'sqlite',
    kind: { type: 'enum', values: ['sqlite', 'cassandra'] },
    doc: 'sqlite (embedded, default) or cassandra.',
  },
  {
    key: 'storage.path',
    section: 'Storage',
    default: './data',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Data directory of the embedded store (created on first start); relative to the working directory.',
  },
  {
    key: 'storage.commit_max_batches',
    section: 'Storage',
    default: '2000',
    kind: { type: 'int', min: 1, max: 100000 },
    doc:
      'Most batches committed in one transaction (group commit). Large batches are bounded by ' +
      'storage.commit_max_bytes first.',
  },
  {
    key: 'storage.commit_max_bytes',
    section: 'Storage',
    default: '2097152',
    kind: { type: 'int', min: 65536, max: 1073741824 },
    doc:
      'Most bytes of batches (their bodies, plus 200 per batch) committed in one transaction (at least ' +
      'one batch): keeps each commit short, so that a batch arriving during a commit of large batches does ' +
      'not wait long.',
  },
  {
    key: 'storage.max_queued_batches',
    section: 'Storage',
    default: '20000',
    kind: { type: 'int', min: 1, max: 10000000 },
    doc: 'Batches waiting for (or in) a commit; beyond this requests are answered 503.',
  },
  {
    key: 'storage.max_queued_bytes',
    section: 'Storage',
    default: '67108864',
    kind: { type: 'int', min: 1048576, max: 17179869184 },
    doc:
      'Bytes of batches (their bodies, plus 200 per batch) waiting for (or in) a commit; beyond this ' +
      'requests are answered 503. Bounds memory under overload.',
  },
  {
    key: 'storage.sqlite_writer',
    section: 'Storage',
    default: 'thread',
    kind: { type: 'enum', values: ['thread', 'inline'] },
    doc:
      'Where the server parses received batches and commits SQLite writes (the ingest sink): a writer ' +
      'thread (parsing and fsync off the event loop) or inline on the event loop.',
  },
  {
    key: 'storage.sqlite_compression',
    section: 'Storage',
    default: 'deflate',
    kind: { type: 'enum', values: ['deflate', 'none'] },
    doc:
      'How the embedded store keeps record lists of 1024 characters or more: deflate (about 2.2-2.4x ' +
      'smaller on 1000-record batches, so about half the disk writes) or none. Rows are read back the same ' +
      'either way, whatever the setting was when they were written.',
  },
  {
    key: 'storage.aggregates',
    section: 'Storage',
    default: 'true',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      "Store each batch's sample count, sum, min and max (and when the max occurs) with its row, computed where " +
      'the body is parsed, so consumption queries and minute rollups add up rows instead of samples (both ' +
      'backends). false leaves them out (queries then read the records).',
  },
  {
    key: 'storage.retention_days',
    section: 'Storage',
    default: '0',
    kind: { type: 'int', min: 0, max: 36500 },
    doc:
      'Embedded store: delete batches and sync results dated (UTC) more than this many days before today, at ' +
      'start and every hour, in small steps while ingest goes on; freed space is reused by new batches (the ' +
      'file does not shrink). 0 keeps everything. Keep it longer than the meters keep their journals, or ' +
      'sync fetches deleted days again. Cassandra: cassandra.ttl_days.',
  },
  {
    key: 'storage.sqlite_synchronous',
    section: 'Storage',
    default: 'FULL',
    kind: { type: 'enum', values: ['FULL', 'NORMAL'] },
    doc: 'SQLite fsync policy. FULL survives power loss; NORMAL survives only process crashes.',
  },
  {
    key: 'storage.sqlite_check_on_start',
    section: 'Storage',
    default: 'true',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Run PRAGMA quick_check when the server opens the embedded store, and refuse to start on a damaged ' +
      'file, naming it. It reads the whole file: false skips it where start-up time on a very large store ' +
      'matters more.',
  },

  {
    key: 'ingest.max_future_seconds',
    section: 'Ingest',
    default: '300',
    kind: { type: 'int', min: 0, max: 31622400 },
    doc:
      'A batch whose timestamp is more than this many seconds ahead of the server clock is answered 400 (a ' +
      'meter with a wrong clock would otherwise write into periods that sync has not reached yet).',
  },

  {
    key: 'ingest.max_wait_ms',
    section: 'Ingest',
    default: '250',
    kind: { type: 'int', min: 0, max: 60000 },
    doc:
      'Overload control: a batch that would wait longer than this for its commit (batches ahead / the ' +
      "store's measured drain rate, or the time the store has been stuck) is answered 503 with Retry-After at " +
      "once. Below SIP's T1 (500 ms), so that a slow store sheds load instead of provoking UDP retransmissions. " +
      '0 = off (only storage.max_queued_* apply).',
  },
  {
    key: 'ingest.max_answer_ms',
    section: 'Ingest',
    default: 'auto',
    kind: { type: 'int', min: 0, max: 60000, words: ['auto'] },
    doc:
      'A UDP MESSAGE whose batch is not committed within this many ms after it came is answered 503 (with ' +
      "Retry-After) at 0.85-0.9 times it (its write goes on; the meter's resend is an idempotent upsert), so that a " +
      "store whose latency has a tail past SIP's T1 (500 ms) does not make UDP meters retransmit. Never a 200 " +
      `before the commit. auto = ${CASSANDRA_ANSWER_MS} with storage.backend=cassandra (a cluster's writes have ` +
      'such a tail: flushes, compaction, a node failing over), off with sqlite (a local commit takes ' +
      'milliseconds). 0 = off.',
  },
  {
    key: 'ingest.max_loop_busy',
    section: 'Ingest',
    default: '95',
    kind: { type: 'int', min: 0, max: 100 },
    doc:
      "Overload control of the receiver's own CPU: two 100-ms windows in a row in which its event loop was " +
      'busy at least this percent cut the share of new batches admitted to 70 % of what it was (the others ' +
      'are answered 503 with Retry-After; a 503 costs the loop far less than a batch, so it catches up with ' +
      'the datagrams waiting in the kernel); each 100 ms below it admits 5 % more (and a quarter more 15 ' +
      'points below it). The share is fair per sender (the device its digest proved, else its address): ' +
      'a sender below its max-min fair share of the last 100 ms keeps its batches, the ones above are cut ' +
      "to it, so a flood does not take a meter's share " +
      '(docs/storage.md). Where the UDP receive queue can be read (Linux) and datagrams come, busy windows ' +
      'cut only while datagrams wait there (2 % of its buffer or more) and the share grows back while it is ' +
      'empty. 0 = off (a burst the store would absorb is then never refused for the CPU, and UDP ' +
      "meters retransmit into the kernel's queue once the receiver falls behind).",
  },

  {
    key: 'cassandra.host',
    section: 'CassandraDB',
    default: '127.0.0.1',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Cassandra contact point(s), comma-separated.',
  },
  {
    key: 'cassandra.port',
    section: 'CassandraDB',
    default: '9042',
    kind: { type: 'int', min: 1, max: 65535 },
    doc: 'Cassandra native protocol port.',
  },
  {
    key: 'cassandra.keyspace',
    section: 'CassandraDB',
    default: 'mykeyspace',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Keyspace holding ec_consumption and ec_checksum (letters, digits, _; at most 48; starts with a letter).',
  },
  {
    key: 'cassandra.local_dc',
    section: 'CassandraDB',
    default: 'datacenter1',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Local data center: requests go to its nodes, LOCAL_* consistencies count in it.',
  },
  {
    key: 'cassandra.replication',
    section: 'CassandraDB',
    default: "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    kind: { type: 'string', nonEmpty: true },
    doc:
      'Replication of a keyspace created by ec-server: a CQL map, or SimpleStrategy:N, or ' +
      'NetworkTopologyStrategy:dc1=3,dc2=3.',
  },
  {
    key: 'cassandra.username',
    section: 'CassandraDB',
    default: '',
    kind: { type: 'string' },
    doc: 'User for PasswordAuthenticator; empty = no authentication.',
  },
  {
    key: 'cassandra.password',
    section: 'CassandraDB',
    default: '',
    kind: { type: 'string' },
    doc: 'Password of cassandra.username.',
  },
  {
    key: 'cassandra.consistency',
    section: 'CassandraDB',
    default: 'LOCAL_QUORUM',
    kind: {
      type: 'enum',
      values: ['LOCAL_QUORUM', 'QUORUM', 'EACH_QUORUM', 'ALL', 'LOCAL_ONE', 'ONE', 'TWO', 'THREE'],
    },
    doc: 'Consistency of reads and writes; a write is answered 200 only once acknowledged at this level.',
  },
  {
    key: 'cassandra.request_timeout_ms',
    section: 'CassandraDB',
    default: '2000',
    kind: { type: 'int', min: 100, max: 120000 },
    doc: 'Client-side timeout of one request (and of connecting); a write that times out is answered 503.',
  },
  {
    key: 'cassandra.ttl_days',
    section: 'CassandraDB',
    default: '0',
    kind: { type: 'int', min: 0, max: 7300 },
    doc: 'Days rows are kept (TTL of every write); 0 = forever.',
  },
  {
    key: 'cassandra.create_schema',
    section: 'CassandraDB',
    default: 'true',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc: 'Create the keyspace and tables when missing (false: they must exist; see `ec-server schema`).',
  },

  {
    key: 'sync.syncfreq',
    section: 'Synchronization',
    default: '30',
    kind: { type: 'int', min: 1, max: 1440 },
    doc: 'Minutes between sync rounds, and the length of a reconciled period.',
  },
  {
    key: 'sync.ip',
    section: 'Synchronization',
    default: '127.0.0.1',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Address of the sync service.',
  },
  {
    key: 'sync.port',
    section: 'Synchronization',
    default: '27979',
    kind: port,
    doc: 'TCP port of the sync service (0 = pick a free port, for tests).',
  },
  {
    key: 'sync.enabled',
    section: 'Synchronization',
    default: 'true',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc: 'Run the sync service inside ec-server.',
  },
  {
    key: 'sync.tls',
    section: 'Synchronization',
    default: 'false',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Serve sync over TLS only (on sync.port), with sync.tls_certificate or else tls.certificate; the ' +
      'tls.client_certificates policy applies as on SIP.',
  },
  {
    key: 'sync.tls_certificate',
    section: 'Synchronization',
    default: '',
    kind: { type: 'string' },
    doc: 'PEM certificate file for sync over TLS; empty = tls.certificate (and tls.key, tls.ca).',
  },
  {
    key: 'sync.tls_key',
    section: 'Synchronization',
    default: '',
    kind: { type: 'string' },
    doc: 'PEM private key file of sync.tls_certificate (required with it).',
  },
  {
    key: 'sync.grace_seconds',
    section: 'Synchronization',
    default: '60',
    kind: { type: 'int', min: 0, max: 3600 },
    doc:
      'A period is reconciled only once it ended this long ago, so that late batches and retransmissions ' +
      'settle first.',
  },
  {
    key: 'sync.delete_extraneous',
    section: 'Synchronization',
    default: 'false',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Delete batches the server holds but the meter does not know (otherwise they are only reported); only for ' +
      'devices whose secret the meter proved in its hello.',
  },
  {
    key: 'sync.request_timeout',
    section: 'Synchronization',
    default: '30',
    kind: { type: 'int', min: 1, max: 600 },
    doc: 'Seconds to wait for a meter to answer one sync request before the period is left pending.',
  },
  {
    key: 'sync.concurrency',
    section: 'Synchronization',
    default: '8',
    kind: { type: 'int', min: 1, max: 1000 },
    doc: 'Meters reconciled at the same time during a round.',
  },
  {
    key: 'sync.max_connections',
    section: 'Synchronization',
    default: '10000',
    kind: { type: 'int', min: 1, max: 1000000 },
    doc: 'Concurrent sync connections; more get an error frame (EC_SYNC_BUSY) and are closed.',
  },
  {
    key: 'sync.idle_timeout',
    section: 'Synchronization',
    default: '0',
    kind: { type: 'int', min: 0, max: 604800 },
    doc:
      'Seconds a sync connection may stay silent (nothing sent or received) before it is closed; meters ' +
      'reconnect. 0 = twice sync.syncfreq (a meter is silent between rounds: keep it above sync.syncfreq ' +
      'minutes).',
  },
  {
    key: 'sync.max_periods_per_round',
    section: 'Synchronization',
    default: '2000',
    kind: { type: 'int', min: 1, max: 10000000 },
    doc:
      'Most periods reconciled for one meter in one round or catch-up (all its devices together); the rest ' +
      'wait for the next round. Bounds the work one hello can cause.',
  },
  {
    key: 'sync.lease_seconds',
    section: 'Synchronization',
    default: '120',
    kind: { type: 'int', min: 10, max: 86400 },
    doc:
      "Several receivers on one store: a receiver reconciles a device only while it holds the device's lease " +
      '(Cassandra: a row taken with a lightweight transaction; SQLite: in process). The lease is renewed before ' +
      'each period and ends by itself this many seconds later, e.g. when its receiver dies. Must exceed the time ' +
      "one period's reconciliation takes.",
  },
  {
    key: 'sync.unwatermarked_lag',
    section: 'Synchronization',
    default: '86400',
    kind: { type: 'int', min: 0, max: 2678400 },
    doc:
      'Seconds: for a meter that declares no watermark (what it will journal nothing more before; older ' +
      'meters), a period counts as final, and may be recorded verified or repaired, only once it ended this ' +
      'long before the server clock. Later periods are still repaired but stay pending.',
  },

  {
    key: 'security.require_auth',
    section: 'Security',
    default: 'false',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Refuse MESSAGEs without digest credentials, and sync hellos that do not prove every device they name, ' +
      'even on loopback. Beyond loopback they are refused anyway unless security.allow_anonymous=true.',
  },
  {
    key: 'security.allow_anonymous',
    section: 'Security',
    default: 'false',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Accept MESSAGEs without credentials, and sync devices without credentials anonymously, while listening ' +
      'beyond loopback (warned about at every start). A device that has credentials must always use them (SIP ' +
      'and sync); sync deletes extraneous data only for proven devices.',
  },
  {
    key: 'security.realm',
    section: 'Security',
    default: 'ec-server',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Digest realm. Credentials are made for one realm: changing it means rotating every device.',
  },
  {
    key: 'security.digest_algorithms',
    section: 'Security',
    default: 'SHA-256,MD5',
    kind: { type: 'list', values: ['sha-256', 'md5'] },
    doc:
      'Digest algorithms offered in a 401, in order of preference (clients use the first they support; sipp ' +
      '3.6 needs MD5 first).',
  },
  {
    key: 'security.nonce_lifetime',
    section: 'Security',
    default: '300',
    kind: { type: 'int', min: 10, max: 86400 },
    doc: 'Seconds a digest nonce may be reused (with increasing nonce counts) before it is stale.',
  },
  {
    key: 'security.nonce_key',
    section: 'Security',
    default: '',
    kind: { type: 'string' },
    doc:
      "Hex key (32+ digits) of the stateless nonces; receivers that share it accept each other's nonces. " +
      'Empty: random at each start.',
  },
  {
    key: 'security.credentials_refresh',
    section: 'Security',
    default: '60',
    kind: { type: 'int', min: 1, max: 86400 },
    doc:
      'Seconds between full reloads of the device credentials. Changes made with `ec-server device` (add, ' +
      'rotate, remove) take effect within a second anyway (the server polls their version token); this ' +
      'reload catches changes made otherwise.',
  },

  {
    key: 'http.enabled',
    section: 'HTTP',
    default: 'true',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Serve the read-only HTTP endpoints /metrics (Prometheus), /healthz and /readyz (docs/operations.md). ' +
      'On loopback by default, so nothing is exposed unless http.listen_addr says so.',
  },
  {
    key: 'http.listen_addr',
    section: 'HTTP',
    default: '127.0.0.1',
    kind: { type: 'string', nonEmpty: true },
    doc: 'Address of the HTTP endpoints. Beyond loopback /metrics needs a bearer token (http.tokens).',
  },
  {
    key: 'http.port',
    section: 'HTTP',
    default: '34580',
    kind: port,
    doc: 'TCP port of the HTTP endpoints (0 = pick a free port, for tests).',
  },
  {
    key: 'http.tokens',
    section: 'HTTP',
    default: '',
    kind: { type: 'string' },
    doc:
      'Bearer tokens accepted on /metrics and /api/devices, comma-separated (each 16+ characters; ' +
      '`openssl rand -hex 32`). Required when http.listen_addr is beyond loopback, unless ' +
      'http.allow_anonymous=true; when set, required on loopback too. /healthz and /readyz never need one.',
  },
  {
    key: 'http.allow_anonymous',
    section: 'HTTP',
    default: 'false',
    kind: { type: 'enum', values: ['true', 'false'] },
    doc:
      'Serve /metrics without a token while listening beyond loopback (warned about at every start); ' +
      'for a scraper on a trusted network. Separate from security.allow_anonymous.',
  },

  {
    key: 'devices.offline_after',
    section: 'Devices',
    default: '300',
    kind: { type: 'int', min: 1, max: 31536000 },
    doc:
      'Seconds without a stored batch after which a device counts as offline in the device registry ' +
      '(GET /api/devices, `ec-server devices`); the transition is logged and counted once.',
  },
  {
    key: 'devices.flush_seconds',
    section: 'Devices',
    default: '10',
    kind: { type: 'int', min: 1, max: 3600 },
    doc:
      'Seconds between writes of the device registry to the store (table ec_device; also written at stop). ' +
      'After a crash, the registry lacks at most this much.',
  },

  {
    key: 'log.level',
    section: 'Log',
    default: 'info',
    kind: { type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    doc: 'Log level (JSON lines on stdout).',
  },
];

export const KEY_INDEX: ReadonlyMap<string, KeyDef> = new Map(CONFIG_KEYS.map((d) => [d.key, d]));

/** `sip.port` -> `EC_SIP_PORT` */
export function envName(key: string): string {
  return 'EC_' + key.toUpperCase().replace(/\./g, '_');
}
