// DALL-E 2's asynchronous operations (docs/azure-api.md, "DALL-E 2 operations"): submit → 202 + operation-location,
// poll with GET, DELETE only once terminal.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertJsonType,
  assertRequestIds,
  GatedEngine,
  operationUrl,
  pathOf,
  pollOperation,
  postJson,
  send,
  submit,
  submitUrl,
  UUID_RE,
  VERSIONS,
} from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

const UNKNOWN_ID = '11111111-2222-4333-8444-555555555555';

describe('submit', () => {
  test('submit answers 202 with an absolute operation-location and {id, status: notRunning}', async () => {
    const res = await postJson(app, submitUrl(), { prompt: 'a paper boat', size: '256x256' });
    assert.equal(res.statusCode, 202);
    assertRequestIds(res);
    assertJsonType(res);
    const body = res.json();
    assert.match(body.id, UUID_RE);
    assert.equal(body.status, 'notRunning');
    for (const key of Object.keys(body)) assert.ok(['id', 'status', 'created'].includes(key), `unexpected key ${key}`);
    const location = new URL(String(res.headers['operation-location']));
    assert.equal(location.origin, 'http://localhost'); // inject() addresses localhost:80
    assert.equal(location.pathname, `/openai/operations/images/${body.id}`);
    assert.equal(location.search, `?api-version=${VERSIONS.operations}`);
    assert.equal(res.headers['retry-after'], '1');
  });

  test('operation-location is built from the Host the client used', async () => {
    const res = await postJson(
      app,
      submitUrl(),
      { prompt: 'a paper boat', size: '256x256' },
      { host: 'images.example.test:8443' },
    );
    assert.ok(
      String(res.headers['operation-location']).startsWith('http://images.example.test:8443/openai/operations/images/'),
    );
  });

  test('operation-location uses EASEL_PUBLIC_URL when set', async () => {
    const proxied = await startTestApp({ env: { EASEL_PUBLIC_URL: 'https://easel.example.test/base/' } });
    try {
      const res = await postJson(proxied, submitUrl(), { prompt: 'a paper boat', size: '256x256' });
      assert.ok(
        String(res.headers['operation-location']).startsWith(
          'https://easel.example.test/base/openai/operations/images/',
        ),
      );
    } finally {
      await proxied.dispose();
    }
  });
});

describe('poll and delete', () => {
  test('GET at operation-location reaches succeeded with created, expires = created + 86400 and result urls', async () => {
    const res = await postJson(app, submitUrl(), { prompt: 'a paper boat', size: '256x256', n: 2 });
    const { id } = res.json();
    await pollOperation(app, id);
    const final = await send(app, { method: 'GET', url: pathOf(String(res.headers['operation-location'])) });
    assert.equal(final.statusCode, 200);
    assertRequestIds(final);
    const body = final.json();
    assert.deepEqual(Object.keys(body).sort(), ['created', 'expires', 'id', 'result', 'status']);
    assert.equal(body.id, id);
    assert.equal(body.status, 'succeeded');
    assert.equal(body.expires, body.created + 86400);
    assert.equal(typeof body.result.created, 'number');
    assert.equal(body.result.data.length, 2);
    for (const item of body.result.data) {
      assert.deepEqual(Object.keys(item), ['url']);
      const image = await app.server.inject({ method: 'GET', url: pathOf(item.url) });
      assert.equal(image.statusCode, 200);
    }
    assert.equal(final.headers['retry-after'], undefined);
  });

  test("an item whose image record is gone reads as an imageExpired error in Azure's item shape, beside the others' urls", async () => {
    const id = await submit(app, { prompt: 'a paper boat', size: '256x256', n: 2 });
    await pollOperation(app, id);
    const [gone] = await app.services.store.listImagesOfOperation(id);
    await app.services.store.deleteImage(gone!.id);
    const body = (await send(app, { method: 'GET', url: operationUrl(id) })).json();
    assert.equal(body.status, 'succeeded');
    const errorItems = body.result.data.filter((item: Record<string, unknown>) => 'error' in item);
    assert.equal(errorItems.length, 1);
    assert.deepEqual(Object.keys(errorItems[0]), ['error']);
    assert.deepEqual(Object.keys(errorItems[0].error), ['code', 'message']);
    assert.equal(errorItems[0].error.code, 'imageExpired');
    assert.equal(typeof errorItems[0].error.message, 'string');
    assert.deepEqual(Object.keys(body.result.data.find((item: Record<string, unknown>) => !('error' in item))), [
      'url',
    ]);
  });

  test('DELETE of a succeeded operation answers 204; GET then shows deleted; a second DELETE is 404', async () => {
    const id = await submit(app, { prompt: 'a paper boat', size: '256x256' });
    await pollOperation(app, id);
    const first = await send(app, { method: 'DELETE', url: operationUrl(id) });
    assert.equal(first.statusCode, 204);
    const after = await send(app, { method: 'GET', url: operationUrl(id) });
    assert.equal(after.statusCode, 200);
    assert.equal(after.json().status, 'deleted');
    assert.equal(after.json().result, undefined);
    assertError(await send(app, { method: 'DELETE', url: operationUrl(id) }), 404, 'NotFound');
  });

  test('GET of an unknown operation id answers 404 NotFound', async () => {
    assertError(await send(app, { method: 'GET', url: operationUrl(UNKNOWN_ID) }), 404, 'NotFound');
  });

  test('DELETE of an unknown operation id answers 404 NotFound', async () => {
    assertError(await send(app, { method: 'DELETE', url: operationUrl(UNKNOWN_ID) }), 404, 'NotFound');
  });

  test('an id that is not a UUID answers 404 NotFound', async () => {
    assertError(await send(app, { method: 'GET', url: operationUrl('not-an-id') }), 404, 'NotFound');
  });

  test('operations are read with any api-version that has them', async () => {
    const id = await submit(app, { prompt: 'a paper boat', size: '256x256' });
    const res = await send(app, { method: 'GET', url: operationUrl(id, '2023-08-01-preview') });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().id, id);
  });

  test('GET of an operation with a version after its removal answers 404 "404"', async () => {
    const id = await submit(app, { prompt: 'a paper boat', size: '256x256' });
    assertError(await send(app, { method: 'GET', url: operationUrl(id, '2024-10-21') }), 404, '404');
  });
});

describe('while an operation runs', () => {
  let gated: TestApp;
  let engine: GatedEngine;
  before(async () => {
    engine = new GatedEngine();
    gated = await startTestApp({
      engine,
      config: { queue: { concurrency: 1, maxWaiting: 8, jobTimeoutSeconds: 600 } },
    });
  });
  after(() => gated.dispose());

  test('a running operation reads running with retry-after, refuses DELETE with 409, and is deletable once it ends', async () => {
    const running = await submit(gated, { prompt: 'a paper boat', size: '256x256' });
    await engine.started;
    const queued = await submit(gated, { prompt: 'a second boat', size: '256x256' });

    const poll = await send(gated, { method: 'GET', url: operationUrl(running) });
    assert.equal(poll.json().status, 'running');
    assert.equal(poll.headers['retry-after'], '1');
    assert.equal((await send(gated, { method: 'GET', url: operationUrl(queued) })).json().status, 'notRunning');

    assertError(await send(gated, { method: 'DELETE', url: operationUrl(running) }), 409, 'Conflict');
    assertError(await send(gated, { method: 'DELETE', url: operationUrl(queued) }), 409, 'Conflict');
    assert.equal((await send(gated, { method: 'GET', url: operationUrl(running) })).json().status, 'running');

    engine.release();
    assert.equal((await pollOperation(gated, running)).body.status, 'succeeded');
    assert.equal((await pollOperation(gated, queued)).body.status, 'succeeded');
    assert.equal((await send(gated, { method: 'DELETE', url: operationUrl(running) })).statusCode, 204);
    assert.equal((await send(gated, { method: 'DELETE', url: operationUrl(queued) })).statusCode, 204);
  });
});
