// @ts-check
// The layer order of src/, written once: each layer and what it may import (besides itself, Node's
// built-ins and npm packages). Anything not listed is an error, and so is any import cycle.
// Data flows one way (README): socket -> framing -> transaction layer -> handler -> group commit -> ingest
// sink -> store; code depends the same way: transport -> protocol, ingest -> protocol and store (the sink's
// writer thread runs the store's SqliteBatchWriter); sync sits beside ingest.
// `npm run lint` runs `depcruise src`; `npm run depcruise` alone prints the violations.

/** @type {Record<string, string>} layer -> path pattern (relative to the repository root) */
const LAYERS = {
  // util/: small data structures with no knowledge of the project (two-generation map, work slots).
  shared: '^src/(domain/|util/|errors\\.ts$|latin1\\.ts$|log\\.ts$|version\\.ts$|types/)',
  config: '^src/config/',
  protocol: '^src/protocol/',
  store: '^src/store/',
  auth: '^src/auth/',
  transport: '^src/transport/',
  ingest: '^src/ingest/',
  sync: '^src/sync/',
  registry: '^src/registry/',
  report: '^src/report/',
  query: '^src/query/',
  client: '^src/client/',
  metrics: '^src/metrics/',
  http: '^src/http/',
  server: '^src/server\\.ts$',
  web: '^src/web/',
  cli: '^src/cli/',
};

/** @type {Record<keyof typeof LAYERS, (keyof typeof LAYERS)[]>} layer -> the lower layers it may import */
const MAY_IMPORT = {
  shared: [],
  config: ['shared'],
  protocol: ['shared'],
  store: ['config', 'shared'],
  // Digest authentication: reads credentials through the store; ingest asks it, the client shares its parser.
  auth: ['store', 'shared'],
  transport: ['protocol', 'shared'],
  ingest: ['auth', 'protocol', 'store', 'shared'],
  sync: ['protocol', 'store', 'shared'],
  // The device registry: fed by the group commit (a callback, no import), written to and loaded from the store.
  registry: ['store', 'shared'],
  report: ['store', 'shared'],
  // Consumption queries, daily statistics, export formats: read through the store.
  query: ['store', 'shared'],
  client: ['sync', 'auth', 'protocol', 'store', 'config', 'shared'],
  // Prometheus metrics: read at scrape time from the stats objects of the layers below (types only).
  metrics: ['registry', 'transport', 'ingest', 'sync', 'auth', 'protocol', 'store', 'shared'],
  // The read-only HTTP endpoints (fastify): told what to serve by the server; they import only the query layer.
  // The HTTP read API runs the query layer's queries and streams its formats. The dashboard's scripts in web/
  // are served as files, not imported.
  http: ['query', 'shared'],
  // The dashboard's browser scripts: they run in the page and talk to the server over HTTP only.
  web: [],
  server: [
    'http',
    'query',
    'metrics',
    'registry',
    'transport',
    'ingest',
    'sync',
    'auth',
    'protocol',
    'store',
    'config',
    'shared',
  ],
  cli: [
    'server',
    'query',
    'client',
    'registry',
    'report',
    'transport',
    'ingest',
    'sync',
    'auth',
    'protocol',
    'store',
    'config',
    'shared',
  ],
};

/**
 * Known violations, each named and temporary (remove the entry when its import goes). Every other import
 * against the order fails.
 * @type {{ from: string, to: string, why: string }[]}
 */
const TEMPORARY_EXCEPTIONS = [];

const anyOf = (/** @type {string[]} */ patterns) => `(${patterns.join('|')})`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-dev-deps-in-src',
      comment: 'src/ ships: it may not import devDependencies.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'] },
    },
  ],
  allowedSeverity: 'error',
  allowed: [
    // Node's built-ins and npm packages: anywhere (devDependencies are caught above).
    { from: {}, to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'] } },
    ...Object.entries(MAY_IMPORT).map(([layer, lower]) => ({
      comment: `${layer} may import ${[layer, ...lower].join(', ')}`,
      from: { path: LAYERS[/** @type {keyof typeof LAYERS} */ (layer)] },
      to: { path: anyOf([layer, ...lower].map((l) => LAYERS[/** @type {keyof typeof LAYERS} */ (l)])) },
    })),
    ...TEMPORARY_EXCEPTIONS.map((e) => ({
      comment: `TEMPORARY: ${e.why}`,
      from: { path: e.from },
      to: { path: e.to },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
