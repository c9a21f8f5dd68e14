// Routes that take no body (every GET and DELETE) treat `Content-Type: application/json` with an
// empty body as an empty request, as python `requests.delete(url, headers=headers)` sends it with the
// quickstart's headers (content-length: 0). Only POST routes parse a body; unknown routes answer 404
// whatever body they were sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ROUTES } from '../../src/http/routes.ts';
import { startListening } from '../e2e/helpers.ts';
import { TEST_KEY, type TestApp } from '../helpers/app.ts';
import { assertError, operationUrl, pollOperation, send, submit, VERSIONS } from './helpers.ts';
import { rawRequest } from './raw.ts';

/** A concrete URL for a route pattern: made-up ids, and the api-version its rule needs. */
function urlFor(pattern: string, apiVersion: string | null): string {
  const path = pattern.replace(/:[a-z]+/g, (param) =>
    param === ':file' ? 'app.js' : 'b2a4c5e0-1111-4222-8333-944445555666',
  );
  if (apiVersion === null || apiVersion === 'v1') return path;
  return `${path}?api-version=${apiVersion === 'operations' ? VERSIONS.operations : VERSIONS.gptImage}`;
}

const BODYLESS = ROUTES.filter((route) => route.method !== 'POST');

describe('body-less routes', () => {
  let app: TestApp;
  let base: string;
  before(async () => ({ app, base } = await startListening()));
  after(() => app.dispose());

  test('the route table has GET and DELETE routes to check', () => {
    assert.ok(BODYLESS.some((r) => r.method === 'DELETE'));
    assert.ok(BODYLESS.filter((r) => r.method === 'GET').length >= 5);
  });

  for (const route of BODYLESS) {
    for (const [label, headers] of [
      ['application/json, content-length 0', { 'content-type': 'application/json', 'content-length': '0' }],
      ['application/json; charset=utf-8, no content-length', { 'content-type': 'application/json; charset=utf-8' }],
      ['text/plain, content-length 0', { 'content-type': 'text/plain', 'content-length': '0' }],
    ] as const) {
      test(`${route.method} ${route.url} with ${label} answers as without a content type`, async () => {
        const url = urlFor(route.url, route.apiVersion);
        const plain = await send(app, { method: route.method, url });
        const typed = await send(app, { method: route.method, url, headers });
        assert.equal(typed.statusCode, plain.statusCode, typed.body.slice(0, 200));
        assert.ok(![400, 415].includes(typed.statusCode), typed.body.slice(0, 200));
      });
    }
  }

  test("DELETE of an ended operation with the quickstart's headers deletes it (raw socket, content-length 0 and none)", async () => {
    for (const contentLength of ['content-length: 0\r\n', '']) {
      const id = await submit(app);
      await pollOperation(app, id);
      const answer = await rawRequest(
        base,
        `DELETE ${operationUrl(id)} HTTP/1.1\r\nhost: x\r\napi-key: ${TEST_KEY}\r\ncontent-type: application/json\r\n${contentLength}connection: close\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 204 /, answer);
      const gone = await send(app, { method: 'GET', url: operationUrl(id) });
      assert.equal((gone.json() as { status: string }).status, 'deleted');
    }
  });

  test('a POST route still refuses an empty JSON body', async () => {
    const res = await send(app, {
      method: 'POST',
      url: '/openai/images/generations:submit?api-version=2023-06-01-preview',
      headers: { 'content-type': 'application/json', 'content-length': '0' },
    });
    assertError(res, 400, 'invalid_json');
  });

  test('an unknown route answers 404 whatever body it was sent', async () => {
    for (const [type, payload] of [
      ['application/json', '{{{'],
      ['application/json', ''],
      ['text/plain', 'hello'],
      ['application/xml', '<a/>'],
    ]) {
      for (const method of ['POST', 'DELETE', 'GET'] as const) {
        const res = await send(app, {
          method,
          url: '/openai/nothing/here',
          headers: { 'content-type': type! },
          ...(method === 'GET' ? {} : { payload }),
        });
        assertError(res, 404, '404');
      }
    }
  });
});
