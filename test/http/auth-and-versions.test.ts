// Keys and api-version rules (docs/azure-api.md, "Routes and api-versions").
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { SECOND_KEY, solidPng, startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  editsUrl,
  file,
  generationsUrl,
  type Headers,
  operationUrl,
  pathOf,
  postForm,
  postJson,
  send,
  submit,
  submitUrl,
} from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

const prompt = { prompt: 'a quiet harbour' };

describe('keys', () => {
  test('a request without a key answers 401 with code "401"', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), prompt, { 'api-key': undefined });
    assertError(res, 401, '401', null);
  });

  test('a wrong api-key answers 401', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), prompt, { 'api-key': 'not-the-key-at-all' });
    assertError(res, 401, '401');
  });

  test('a wrong Bearer token answers 401', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), prompt, { authorization: 'Bearer not-the-key-at-all' });
    assertError(res, 401, '401');
  });

  test('a Basic authorization header is not a key: 401', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), prompt, { authorization: `Basic ${TEST_KEY}` });
    assertError(res, 401, '401');
  });

  test('a missing key is refused before the api-version is looked at', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3', null), prompt, { 'api-key': undefined });
    assertError(res, 401, '401');
  });

  const accepted: Array<[string, Headers]> = [
    ['api-key', { 'api-key': TEST_KEY }],
    ['Api-Key', { 'Api-Key': TEST_KEY }],
    ['API-KEY', { 'API-KEY': TEST_KEY }],
    ['Authorization: Bearer', { authorization: `Bearer ${TEST_KEY}` }],
    ['Authorization: bearer (lower case)', { Authorization: `bearer ${TEST_KEY}` }],
    ['the second configured key (rotation)', { 'api-key': SECOND_KEY }],
    ['the second key as Bearer', { authorization: `Bearer ${SECOND_KEY}` }],
    ['Ocp-Apim-Subscription-Key', { 'Ocp-Apim-Subscription-Key': TEST_KEY, 'api-key': undefined }],
  ];
  for (const [name, headers] of accepted) {
    test(`the key is accepted as ${name}`, async () => {
      const res = await postJson(app, generationsUrl('dall-e-3'), { ...prompt, response_format: 'b64_json' }, headers);
      assert.equal(res.statusCode, 200, res.body);
    });
  }

  test('GET and DELETE of an operation need a key too', async () => {
    const id = await submit(app);
    assertError(
      await send(app, { method: 'GET', url: operationUrl(id), headers: { 'api-key': undefined } }),
      401,
      '401',
    );
    assertError(
      await send(app, { method: 'DELETE', url: operationUrl(id), headers: { 'api-key': undefined } }),
      401,
      '401',
    );
  });

  test('edits need a key', async () => {
    const res = await postForm(
      app,
      editsUrl('gpt-image-1'),
      [{ name: 'prompt', value: 'x' }, file('image', await solidPng(8, 8))],
      {
        'api-key': undefined,
      },
    );
    assertError(res, 401, '401');
  });

  test('/healthz and a signed image link need no key', async () => {
    const health = await app.server.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    const made = await postJson(app, generationsUrl('dall-e-3'), prompt);
    const image = await app.server.inject({ method: 'GET', url: pathOf(made.json().data[0].url) });
    assert.equal(image.statusCode, 200);
    assert.equal(image.headers['content-type'], 'image/png');
  });
});

describe('api-version', () => {
  test('generations without api-version answer 404 with code "404"', async () => {
    assertError(await postJson(app, generationsUrl('dall-e-3', null), prompt), 404, '404');
  });

  test('an empty api-version counts as missing: 404', async () => {
    assertError(
      await postJson(app, '/openai/deployments/dall-e-3/images/generations?api-version=', prompt),
      404,
      '404',
    );
  });

  test('edits without api-version answer 404', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1', null), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 404, '404');
  });

  test('DALL-E 2 submit and GET without api-version answer 404', async () => {
    assertError(await postJson(app, submitUrl(null), prompt), 404, '404');
    const id = await submit(app);
    assertError(await send(app, { method: 'GET', url: operationUrl(id, null) }), 404, '404');
    assertError(await send(app, { method: 'DELETE', url: operationUrl(id, null) }), 404, '404');
  });

  for (const version of ['2020-01-01', 'banana', '2024-13-45x', '2024-10-21-beta']) {
    test(`an unknown api-version "${version}" answers 400 BadRequest naming api-version`, async () => {
      assertError(await postJson(app, generationsUrl('dall-e-3', version), prompt), 400, 'BadRequest', 'api-version');
    });
  }

  test('an unknown api-version on DALL-E 2 submit answers 400 BadRequest', async () => {
    assertError(await postJson(app, submitUrl('banana'), prompt), 400, 'BadRequest', 'api-version');
  });

  test('edits with 2025-03-01-preview answer 404 (edits start at 2025-04-01-preview)', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1', '2025-03-01-preview'), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 404, '404');
  });

  test('gpt-image-1 generation with 2024-02-01 answers 400 BadRequest naming api-version', async () => {
    assertError(
      await postJson(app, generationsUrl('gpt-image-1', '2024-02-01'), prompt),
      400,
      'BadRequest',
      'api-version',
    );
  });

  test('dall-e-3 generation with 2024-02-01 succeeds', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3', '2024-02-01'), prompt);
    assert.equal(res.statusCode, 200, res.body);
  });

  test('dall-e-3 generation with 2023-12-01-preview (the first sync version) succeeds', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3', '2023-12-01-preview'), prompt);
    assert.equal(res.statusCode, 200, res.body);
  });

  test('sync generations with 2023-06-01-preview (before the route existed) answer 404', async () => {
    assertError(await postJson(app, generationsUrl('dall-e-3', '2023-06-01-preview'), prompt), 404, '404');
  });

  test('DALL-E 2 submit with 2024-02-01 answers 404 (the operation was removed)', async () => {
    assertError(await postJson(app, submitUrl('2024-02-01'), prompt), 404, '404');
  });

  for (const version of ['2023-07-01-preview', '2023-08-01-preview']) {
    test(`DALL-E 2 submit with ${version} answers 202`, async () => {
      const res = await postJson(app, submitUrl(version), prompt);
      assert.equal(res.statusCode, 202, res.body);
      assert.ok(String(res.headers['operation-location']).endsWith(`?api-version=${version}`));
    });
  }

  test('a future well-formed version (2026-01-01-preview) is accepted on generations and edits', async () => {
    const gen = await postJson(app, generationsUrl('gpt-image-1', '2026-01-01-preview'), {
      ...prompt,
      size: '1024x1024',
    });
    assert.equal(gen.statusCode, 200, gen.body);
    const dalle3 = await postJson(app, generationsUrl('dall-e-3', '2026-01-01-preview'), prompt);
    assert.equal(dalle3.statusCode, 200, dalle3.body);
    const edit = await postForm(app, editsUrl('gpt-image-1', '2026-01-01-preview'), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assert.equal(edit.statusCode, 200, edit.body);
  });

  test('v1 without api-version is accepted, and with a dated version too', async () => {
    const headers = { authorization: `Bearer ${TEST_KEY}` };
    const bare = await postJson(app, '/openai/v1/images/generations', { model: 'dall-e-3', ...prompt }, headers);
    assert.equal(bare.statusCode, 200, bare.body);
    const dated = await postJson(
      app,
      '/openai/v1/images/generations?api-version=2025-04-01-preview',
      { model: 'dall-e-3', ...prompt },
      headers,
    );
    assert.equal(dated.statusCode, 200, dated.body);
  });

  test('v1 with api-version "banana" answers 400 BadRequest', async () => {
    const res = await postJson(app, '/openai/v1/images/generations?api-version=banana', {
      model: 'dall-e-3',
      ...prompt,
    });
    assertError(res, 400, 'BadRequest', 'api-version');
  });
});
