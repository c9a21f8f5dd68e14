// A full queue answers 429 with retry-after (docs/azure-api.md: errors, response headers); an engine that throws
// answers
// 500 and leaves the server serving; on DALL-E 2 both end the operation with an error instead.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertHealthy,
  assertNothingStored,
  editsUrl,
  failingEngine,
  file,
  GatedEngine,
  generationsUrl,
  operationUrl,
  pollOperation,
  postForm,
  postJson,
  type Response,
  send,
  submit,
  submitUrl,
} from './helpers.ts';

function assertTooManyRequests(res: Response) {
  assertError(res, 429, '429', null);
  const seconds = String(res.headers['retry-after']);
  assert.match(seconds, /^\d+$/);
  assert.ok(Number(seconds) >= 1 && Number(seconds) < 60, `retry-after ${seconds}`);
  assert.equal(res.headers['retry-after-ms'], String(Number(seconds) * 1000));
}

describe('a full queue', () => {
  let app: TestApp;
  let engine: GatedEngine;
  let first: Promise<Response>;
  before(async () => {
    engine = new GatedEngine();
    app = await startTestApp({ engine, config: { queue: { concurrency: 1, maxWaiting: 0, jobTimeoutSeconds: 600 } } });
    // One request holds the only slot for the whole block; each test below stands alone.
    first = postJson(app, generationsUrl('dall-e-3'), { prompt: 'the first', response_format: 'b64_json' });
    await engine.started;
  });
  after(async () => {
    engine.release();
    await first;
    await app.dispose();
  });

  test('a second dall-e-3 generation answers 429 with an integer retry-after under 60', async () => {
    assertTooManyRequests(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'the second' }));
  });

  test('a gpt-image-1 generation answers 429 too', async () => {
    assertTooManyRequests(await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'the second' }));
  });

  test('a streamed generation answers an ordinary 429 before any event', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'the second', stream: true });
    assertTooManyRequests(res);
  });

  test('an edit answers 429', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assertTooManyRequests(res);
  });

  test('a DALL-E 2 submit answers 429 and records no operation', async () => {
    const before = await app.services.store.listOperations(['notRunning', 'running', 'failed']);
    assertTooManyRequests(await postJson(app, submitUrl(), { prompt: 'the second' }));
    assert.deepEqual(await app.services.store.listOperations(['notRunning', 'running', 'failed']), before);
  });

  test('health checks still answer while the queue is full', async () => {
    await assertHealthy(app);
  });
});

describe('a full queue that frees its slot', () => {
  let app: TestApp;
  let engine: GatedEngine;
  before(async () => {
    engine = new GatedEngine();
    app = await startTestApp({ engine, config: { queue: { concurrency: 1, maxWaiting: 0, jobTimeoutSeconds: 600 } } });
  });
  after(() => app.dispose());

  test('once released, the first request succeeds and the next one is admitted', async () => {
    const first = postJson(app, generationsUrl('dall-e-3'), { prompt: 'the first', response_format: 'b64_json' });
    await engine.started;
    assertTooManyRequests(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'the second' }));
    engine.release();
    assert.equal((await first).statusCode, 200);
    const next = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'the third', response_format: 'b64_json' });
    assert.equal(next.statusCode, 200, next.body);
    assert.equal(engine.runs, 2);
  });
});

describe('an engine that throws', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ engine: failingEngine });
  });
  after(() => app.dispose());

  test('dall-e-3 answers 500 InternalServerError naming the request id, and stores nothing', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' });
    const error = assertError(res, 500, 'InternalServerError', null);
    assert.equal(error.type, 'server_error');
    assert.ok(String(error.message).includes(String(res.headers['x-request-id'])));
    await assertNothingStored(app);
  });

  test('gpt-image-1 generations and edits answer 500 InternalServerError', async () => {
    assertError(await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a cat' }), 500, 'InternalServerError');
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 500, 'InternalServerError');
  });

  test('a streamed generation ends with an error event carrying InternalServerError', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a cat', stream: true });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /^event: error\ndata: /m);
    assert.match(res.body, /"code":"InternalServerError"/);
    assert.doesNotMatch(res.body, /image_generation\.completed/);
  });

  test('the server keeps serving after failures', async () => {
    await assertHealthy(app);
    assertError(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'again' }), 500, 'InternalServerError');
  });

  test('a DALL-E 2 operation ends failed with an error object and no result, and can be deleted', async () => {
    const id = await submit(app, { prompt: 'a cat', size: '256x256' });
    const { body } = await pollOperation(app, id);
    assert.equal(body.status, 'failed');
    assert.equal(typeof body.error.code, 'string');
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.result, undefined);
    assert.equal((await send(app, { method: 'DELETE', url: operationUrl(id) })).statusCode, 204);
  });
});

describe('a job past jobTimeoutSeconds', () => {
  let app: TestApp;
  let engine: GatedEngine;
  before(async () => {
    engine = new GatedEngine();
    app = await startTestApp({ engine, config: { queue: { concurrency: 1, maxWaiting: 8, jobTimeoutSeconds: 1 } } });
  });
  after(async () => {
    engine.release();
    await app.dispose();
  });

  test('a DALL-E 2 operation that runs past jobTimeoutSeconds ends canceled with a timeout error, and can be deleted', async () => {
    const id = await submit(app, { prompt: 'a slow cat', size: '256x256' });
    const { body } = await pollOperation(app, id);
    assert.equal(body.status, 'canceled');
    assert.equal(body.error.code, 'timeout');
    assert.equal(body.result, undefined);
    assert.equal((await send(app, { method: 'DELETE', url: operationUrl(id) })).statusCode, 204);
  });

  test('a dall-e-3 generation past jobTimeoutSeconds answers 500 with code Timeout, and the server keeps serving', async () => {
    assertError(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a slow cat' }), 500, 'Timeout');
    assert.equal((await send(app, { method: 'GET', url: '/healthz' })).statusCode, 200);
  });
});
