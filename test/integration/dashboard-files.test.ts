import { request } from 'node:http';
import { expect } from 'chai';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const TOKEN = 'dashboard-token-0123456789';

/**
 * The dashboard's files on the HTTP listener (same port as /metrics): content types, caching, security
 * headers; served without a token while the API they call requires one. The page itself is driven in a real
 * browser by test/full/dashboard-browser.test.ts.
 */
describe('dashboard files: served on the HTTP port, types, caching, open while the API needs a token', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'http.tokens': TOKEN });
  });
  after(async () => {
    await server?.cleanup();
  });
  /**
   * A GET as a browser's first and conditional loads send it: node:http, because fetch() adds
   * `Cache-Control: no-cache` to conditional requests (no 304 then) and normalises `..` away.
   */
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Headers; text: () => Promise<string> }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.httpPort, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, headers: h, text: async () => body });
        });
      });
      req.on('error', reject);
      req.end();
    });

  it('/ and /dashboard redirect to /dashboard/, the device list', async () => {
    for (const path of ['/', '/dashboard']) {
      const r = await get(path);
      expect(r.status, path).to.equal(302);
      expect(r.headers.get('location')).to.equal('/dashboard/');
    }
    const r = await get('/dashboard/');
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    const html = await r.text();
    expect(html).to.include('<main id="main">').and.include('src="devices-page.js"');
  });

  it('pages, scripts and styles: their content types, no-cache with validators, security headers', async () => {
    const files: [string, RegExp][] = [
      ['/dashboard/device.html', /^text\/html; charset=utf-8$/],
      ['/dashboard/devices-page.js', /^(application|text)\/javascript; charset=utf-8$/],
      ['/dashboard/device-page.js', /^(application|text)\/javascript; charset=utf-8$/],
      ['/dashboard/series.js', /^(application|text)\/javascript; charset=utf-8$/],
      ['/dashboard/api.js', /^(application|text)\/javascript; charset=utf-8$/],
      ['/dashboard/dashboard.css', /^text\/css; charset=utf-8$/],
    ];
    for (const [path, type] of files) {
      const r = await get(path);
      expect(r.status, path).to.equal(200);
      expect(r.headers.get('content-type'), path).to.match(type);
      expect(r.headers.get('cache-control'), path).to.equal('no-cache');
      expect(r.headers.get('x-content-type-options'), path).to.equal('nosniff');
      expect(r.headers.get('content-security-policy'), path).to.include("script-src 'self'");
      const etag = r.headers.get('etag');
      expect(etag, path).to.be.a('string');
      const again = await get(path, { 'If-None-Match': etag! });
      expect(again.status, `${path} revalidated`).to.equal(304);
    }
  });

  it('uPlot comes from node_modules under a versioned ETag, cached for a day; no CDN in any page', async () => {
    const js = await get('/dashboard/vendor/uplot.js');
    expect(js.status).to.equal(200);
    expect(js.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).to.equal('public, max-age=86400');
    expect(await js.text()).to.include('export { uPlot as default }');
    const etag = js.headers.get('etag')!;
    expect(etag).to.match(/^"uplot-\d+\.\d+\.\d+"$/);
    expect((await get('/dashboard/vendor/uplot.js', { 'If-None-Match': etag })).status).to.equal(304);
    expect((await get('/dashboard/vendor/uplot.css')).headers.get('content-type')).to.equal('text/css; charset=utf-8');
    for (const page of ['/dashboard/', '/dashboard/device.html']) {
      expect(await (await get(page)).text(), page).to.not.match(/https?:\/\//);
    }
  });

  it('nothing else: source maps, TypeScript, unknown vendor files, paths out of the folder are 404', async () => {
    for (const path of [
      '/dashboard/series.js.map',
      '/dashboard/series.ts',
      '/dashboard/vendor/uplot.d.ts',
      '/dashboard/vendor/package.json',
      '/dashboard/../package.json',
      '/dashboard/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/dashboard/nope.html',
    ]) {
      expect((await get(path)).status, path).to.equal(404);
    }
  });

  it('the files need no token; the API they call does (401 with WWW-Authenticate), and accepts the token', async () => {
    expect((await get('/dashboard/device.html')).status).to.equal(200);
    const refused = await get('/api/devices');
    expect(refused.status).to.equal(401);
    expect(refused.headers.get('www-authenticate')).to.match(/^Bearer /);
    expect((await get('/api/devices', { Authorization: `Bearer ${TOKEN}` })).status).to.equal(200);
    // A path that only starts like the dashboard is not open.
    expect((await get('/dashboardx')).status).to.equal(401);
  });
});
