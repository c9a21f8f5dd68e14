// Security headers (src/http/security-headers.ts): nosniff on every answer, and on the playground
// (which keeps the API key in localStorage) a strict Content-Security-Policy, frame-ancestors
// 'none' with X-Frame-Options, no Referer. The browser tests check that the page works under them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { playgroundPolicy } from '../../src/http/security-headers.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { generationsUrl, pathOf, postJson, type Response, send } from './helpers.ts';

const PAGE_PATHS = [
  '/',
  '/playground/app.js',
  '/playground/style.css',
  '/playground/config.json',
  '/playground/favicon.svg',
  '/favicon.ico',
];

function directives(res: Response): Map<string, string> {
  const csp = String(res.headers['content-security-policy'] ?? '');
  return new Map(
    csp
      .split(';')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => [d.split(' ')[0]!, d.slice(d.indexOf(' ') + 1)] as [string, string]),
  );
}

describe('security headers', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp();
  });
  after(() => app.dispose());

  for (const url of PAGE_PATHS) {
    test(`GET ${url}: a strict CSP, no framing, nosniff, no Referer`, async () => {
      const res = await app.server.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, res.body);
      const csp = directives(res);
      assert.equal(csp.get('default-src'), "'none'");
      assert.equal(csp.get('script-src'), "'self'");
      assert.equal(csp.get('style-src'), "'self'");
      assert.equal(csp.get('img-src'), "'self' data: blob:");
      assert.equal(csp.get('connect-src'), "'self'");
      assert.equal(csp.get('frame-ancestors'), "'none'");
      assert.equal(csp.get('base-uri'), "'none'");
      assert.equal(csp.get('object-src'), "'none'");
      assert.ok(![...csp.values()].some((v) => v.includes('unsafe')), 'no unsafe-inline or unsafe-eval');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
    });
  }

  test('the page has no inline script or style for the policy to refuse', async () => {
    const html = (await app.server.inject({ method: 'GET', url: '/' })).body;
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'an inline <script>');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'inline style or an event handler attribute');
  });

  test('GET /favicon.ico: a small PNG with caching headers', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/favicon.ico' });
    assert.equal(res.headers['content-type'], 'image/png');
    assert.match(String(res.headers['cache-control']), /^public, max-age=\d+$/);
    assert.deepEqual([...res.rawPayload.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(res.rawPayload.length < 4096, `${res.rawPayload.length} bytes`);
    // Built once: a second request answers the same bytes.
    assert.deepEqual((await app.server.inject({ method: 'GET', url: '/favicon.ico' })).rawPayload, res.rawPayload);
  });

  test('API answers and image downloads carry nosniff, errors and 404s included, and not the page policy', async () => {
    const made = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' });
    assert.equal(made.statusCode, 200, made.body);
    const download = await app.server.inject({ method: 'GET', url: pathOf(made.json().data[0].url) });
    assert.equal(download.statusCode, 200);
    const answers = [
      made,
      download,
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' }, { 'api-key': 'wrong-key-123' }),
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', n: 5 }),
      await send(app, { method: 'GET', url: '/nowhere' }),
      await send(app, { method: 'GET', url: '/playground/missing.js' }),
      await send(app, { method: 'GET', url: '/files/images/x.png?se=1&sig=bad' }),
      await app.server.inject({ method: 'GET', url: '/healthz' }),
    ];
    for (const res of answers) {
      assert.equal(res.headers['x-content-type-options'], 'nosniff', `${res.statusCode} ${res.body.slice(0, 80)}`);
    }
    assert.equal(made.headers['content-security-policy'], undefined);
    assert.equal(download.headers['content-security-policy'], undefined);
  });

  test('EASEL_PUBLIC_URL on another origin: the page may show images from it', async () => {
    assert.equal(
      new Map(
        playgroundPolicy('https://images.example.com/base/')
          .split('; ')
          .map((d) => [d.split(' ')[0], d]),
      ).get('img-src'),
      "img-src 'self' data: blob: https://images.example.com",
    );
    const other = await startTestApp({ env: { EASEL_PUBLIC_URL: 'https://easel.example.com' } });
    try {
      const res = await other.server.inject({ method: 'GET', url: '/' });
      assert.equal(directives(res).get('img-src'), "'self' data: blob: https://easel.example.com");
    } finally {
      await other.dispose();
    }
  });
});
