import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where the dashboard is served; its files hold no data, so they are served without a token (the API is not). */
export const DASHBOARD_PREFIX = '/dashboard/';

/** The dashboard's scripts: src/web/*.ts compiled by tsc beside this module (dist/src/web). */
const SCRIPTS_DIR = fileURLToPath(new URL('../web/', import.meta.url));
/** Its pages and style sheet, not compiled: web/ at the package's root (dist/src/web -> ../../../web). */
const PAGES_DIR = join(SCRIPTS_DIR, '../../../web');
/** What the dashboard serves from those folders (and / for index.html); anything else (source maps, .ts) is a 404. */
const SERVED = /(\.(html|js|css)|\/)$/;

/**
 * Every dashboard response: no sniffing, no framing, and a policy that lets the pages load only their own
 * scripts and styles and talk only to this server (the pages have no inline script or style).
 */
const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

/** A file of the uPlot package kept in memory, served with a long cache life under a versioned URL. */
interface VendorFile {
  body: Buffer;
  type: string;
}

function uplotFiles(): { version: string; files: Map<string, VendorFile> } {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve('uplot'));
  const pkg = JSON.parse(readFileSync(join(dist, '../package.json'), 'utf8')) as { version: string };
  const files = new Map<string, VendorFile>([
    ['uplot.js', { body: readFileSync(join(dist, 'uPlot.esm.js')), type: 'text/javascript; charset=utf-8' }],
    ['uplot.css', { body: readFileSync(join(dist, 'uPlot.min.css')), type: 'text/css; charset=utf-8' }],
  ]);
  return { version: pkg.version, files };
}

function withSecurityHeaders(reply: FastifyReply): FastifyReply {
  return reply.headers(SECURITY_HEADERS);
}

/**
 * The web dashboard on the HTTP listener (issue 16 item 7): `/` redirects to /dashboard/, the pages and
 * scripts are served from the package (revalidated on every load: `no-cache` with ETag and Last-Modified, so a
 * new version shows at once and an unchanged file costs a 304), uPlot from node_modules (no CDN) under
 * /dashboard/vendor/, cached for a day and revalidated by its version.
 */
export async function registerDashboard(app: FastifyInstance): Promise<void> {
  const uplot = uplotFiles();
  const vendorEtag = `"uplot-${uplot.version}"`;
  app.get('/', async (_req, reply) => reply.redirect(DASHBOARD_PREFIX, 302));
  app.get(DASHBOARD_PREFIX.slice(0, -1), async (_req, reply) => reply.redirect(DASHBOARD_PREFIX, 302));
  app.get(`${DASHBOARD_PREFIX}vendor/:file`, async (req, reply) => {
    const f = uplot.files.get((req.params as { file: string }).file);
    if (!f) return reply.callNotFound();
    withSecurityHeaders(reply).header('Cache-Control', 'public, max-age=86400').header('ETag', vendorEtag);
    if (req.headers['if-none-match'] === vendorEtag) return reply.code(304).send();
    return reply.type(f.type).send(f.body);
  });
  await app.register(fastifyStatic, {
    root: [SCRIPTS_DIR, PAGES_DIR],
    prefix: DASHBOARD_PREFIX,
    index: 'index.html',
    cacheControl: false,
    etag: true,
    lastModified: true,
    dotfiles: 'deny',
    allowedPath: (path) => SERVED.test(path),
    setHeaders: (res) => {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
      res.setHeader('Cache-Control', 'no-cache');
    },
  });
}

/** Whether a request path is one of the dashboard's files (served without a token: they hold no data). */
export function isDashboardFile(path: string): boolean {
  return path === '/' || path === DASHBOARD_PREFIX.slice(0, -1) || path.startsWith(DASHBOARD_PREFIX);
}
