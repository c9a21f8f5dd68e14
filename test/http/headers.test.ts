// Azure's troubleshooting headers and the JSON error envelope on every kind of answer
// (docs/azure-api.md: responses, errors, response headers).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertJsonType,
  assertRequestIds,
  generationsUrl,
  operationUrl,
  pathOf,
  pollOperation,
  postJson,
  type Response,
  send,
  submit,
  submitUrl,
} from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

describe('x-request-id and apim-request-id', () => {
  const cases: Array<[string, () => Promise<Response>, number]> = [
    [
      'a 200 generation',
      () => postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', response_format: 'b64_json' }),
      200,
    ],
    ['a 202 submit', () => postJson(app, submitUrl(), { prompt: 'a cat', size: '256x256' }), 202],
    ['a 400 validation error', () => postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', n: 5 }), 400],
    [
      'a 401',
      () => postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' }, { 'api-key': 'wrong-key-123' }),
      401,
    ],
    ['a 404 for an unknown route', () => send(app, { method: 'GET', url: '/nowhere' }), 404],
    [
      'a 404 for a missing api-version',
      () => postJson(app, generationsUrl('dall-e-3', null), { prompt: 'a cat' }),
      404,
    ],
    ['a 404 DeploymentNotFound', () => postJson(app, generationsUrl('nope', '2024-10-21'), { prompt: 'a cat' }), 404],
    ['a 415', () => postJson(app, generationsUrl('dall-e-3'), 'a cat', { 'content-type': 'text/plain' }), 415],
    ['/healthz', () => app.server.inject({ method: 'GET', url: '/healthz' }), 200],
  ];
  for (const [name, call, status] of cases) {
    test(`${name} carries equal x-request-id and apim-request-id UUIDs and JSON content-type`, async () => {
      const res = await call();
      assert.equal(res.statusCode, status, res.body);
      assertRequestIds(res);
      assertJsonType(res);
      assert.equal(res.headers['x-ms-region'], 'local');
    });
  }

  test('a 204 DELETE carries the request ids', async () => {
    const id = await submit(app, { prompt: 'a cat', size: '256x256' });
    await pollOperation(app, id);
    const res = await send(app, { method: 'DELETE', url: operationUrl(id) });
    assert.equal(res.statusCode, 204);
    assertRequestIds(res);
    assert.equal(res.body, '');
  });

  test('a downloaded image carries the request ids', async () => {
    const made = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' });
    const res = await app.server.inject({ method: 'GET', url: pathOf(made.json().data[0].url) });
    assert.equal(res.statusCode, 200);
    assertRequestIds(res);
  });

  test('each request gets its own id', async () => {
    const a = await app.server.inject({ method: 'GET', url: '/healthz' });
    const b = await app.server.inject({ method: 'GET', url: '/healthz' });
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  test('a client x-request-id is not echoed as the server id (ids are always fresh UUIDs)', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'mine' } });
    assertRequestIds(res);
    assert.notEqual(res.headers['x-request-id'], 'mine');
  });

  test('x-ms-client-request-id is echoed back', async () => {
    const res = await postJson(
      app,
      generationsUrl('dall-e-3'),
      { prompt: 'a cat', n: 9 },
      { 'x-ms-client-request-id': 'client-123' },
    );
    assert.equal(res.headers['x-ms-client-request-id'], 'client-123');
  });
});

describe('error envelope', () => {
  test('a validation error is {error:{code,message,param,type}} with type invalid_request_error', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', size: '10x10' });
    const error = assertError(res, 400, 'invalid_parameter', 'size');
    assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(error.type, 'invalid_request_error');
  });

  test('a 401 envelope has param and type null', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' }, { 'api-key': undefined });
    const error = assertError(res, 401, '401', null);
    assert.equal(error.type, null);
  });

  test('a 404 for an unknown route has param null', async () => {
    assertError(
      await send(app, { method: 'POST', url: '/openai/deployments/dall-e-3/images/variations?api-version=2024-10-21' }),
      404,
      '404',
      null,
    );
  });

  test('an unknown operation id answers 404 NotFound', async () => {
    assertError(
      await send(app, { method: 'GET', url: operationUrl('00000000-0000-4000-8000-000000000000') }),
      404,
      'NotFound',
    );
  });
});

describe('browsers (CORS), as Azure answers them', () => {
  test('a preflight for a generation with an api-key header is allowed from any origin', async () => {
    const res = await send(app, {
      method: 'OPTIONS',
      url: generationsUrl('dall-e-3'),
      headers: {
        origin: 'http://localhost:5173',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'api-key,content-type',
      },
    });
    assert.equal(res.statusCode, 204);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(String(res.headers['access-control-allow-headers']), /api-key/);
  });

  test('answers carry access-control-allow-origin and expose the request id and operation-location', async () => {
    const res = await postJson(
      app,
      submitUrl(),
      { prompt: 'a cat', size: '256x256' },
      { origin: 'http://localhost:5173' },
    );
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(String(res.headers['access-control-expose-headers']), /operation-location/);
  });
});
