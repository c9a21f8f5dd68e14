// Every route of src/http/routes.ts answers on its path (the DALL-E 2 operation routes are driven
// in operations.test.ts, the image links in files.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { decode, solidPng, startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertRequestIds,
  b64,
  editsUrl,
  file,
  generationsUrl,
  postForm,
  postJson,
  send,
  submitUrl,
  UUID_RE,
  VERSIONS,
} from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

const bearer = { authorization: `Bearer ${TEST_KEY}` };

describe('Azure deployment routes', () => {
  test('POST /openai/deployments/dall-e-3/images/generations answers 200 with one url item', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a lighthouse' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(typeof body.created, 'number');
    assert.equal(body.data.length, 1);
    assert.match(body.data[0].url, /^http:\/\/localhost(:80)?\/files\/images\//);
  });

  test('POST /openai/deployments/gpt-image-1/images/generations answers 200 with b64_json', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a lighthouse', size: '1024x1024' });
    assert.equal(res.statusCode, 200);
    const image = await decode(b64(res.json().data[0]));
    assert.deepEqual([image.width, image.height, image.format], [1024, 1024, 'png']);
  });

  test('POST /openai/deployments/gpt-image-1/images/edits answers 200 with an edited image of the input size', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'add a hat' },
      file('image', await solidPng(64, 48)),
    ]);
    assert.equal(res.statusCode, 200, res.body);
    const image = await decode(b64(res.json().data[0]));
    assert.deepEqual([image.width, image.height], [64, 48]);
  });

  test('POST /openai/images/edits takes the deployment from the model form field', async () => {
    const res = await postForm(app, `/openai/images/edits?api-version=${VERSIONS.gptImage}`, [
      { name: 'model', value: 'gpt-image-1' },
      { name: 'prompt', value: 'add a hat' },
      file('image', await solidPng(32, 32)),
    ]);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().data.length, 1);
  });

  test('POST /openai/images/edits without a model field answers 400 naming model', async () => {
    const res = await postForm(app, `/openai/images/edits?api-version=${VERSIONS.gptImage}`, [
      { name: 'prompt', value: 'add a hat' },
      file('image', await solidPng(32, 32)),
    ]);
    assertError(res, 400, 'missing_required_parameter', 'model');
  });

  test('POST /openai/images/edits with an unknown model answers 404 DeploymentNotFound', async () => {
    const res = await postForm(app, `/openai/images/edits?api-version=${VERSIONS.gptImage}`, [
      { name: 'model', value: 'no-such-deployment' },
      { name: 'prompt', value: 'add a hat' },
      file('image', await solidPng(32, 32)),
    ]);
    assertError(res, 404, 'DeploymentNotFound');
  });

  test('POST /openai/images/generations:submit answers 202 with an operation id', async () => {
    const res = await postJson(app, submitUrl(), { prompt: 'a kite' });
    assert.equal(res.statusCode, 202);
    assert.match(res.json().id, UUID_RE);
  });
});

describe('v1 and plain OpenAI routes', () => {
  for (const prefix of ['/openai/v1', '/v1']) {
    test(`POST ${prefix}/images/generations takes model from the body and a Bearer key, no api-version`, async () => {
      const res = await postJson(
        app,
        `${prefix}/images/generations`,
        { model: 'gpt-image-1', prompt: 'a fox', size: '1024x1024' },
        bearer,
      );
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().data.length, 1);
      assert.equal(res.json().size, '1024x1024');
    });

    test(`POST ${prefix}/images/generations serves dall-e-3 named by model`, async () => {
      const res = await postJson(app, `${prefix}/images/generations`, { model: 'dall-e-3', prompt: 'a fox' }, bearer);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(typeof res.json().data[0].revised_prompt, 'string');
    });

    test(`POST ${prefix}/images/generations accepts api-version=preview`, async () => {
      const res = await postJson(
        app,
        `${prefix}/images/generations?api-version=preview`,
        { model: 'gpt-image-1', prompt: 'a fox' },
        bearer,
      );
      assert.equal(res.statusCode, 200, res.body);
    });

    test(`POST ${prefix}/images/generations without model answers 400 naming model`, async () => {
      const res = await postJson(app, `${prefix}/images/generations`, { prompt: 'a fox' }, bearer);
      assertError(res, 400, 'missing_required_parameter', 'model');
    });

    test(`POST ${prefix}/images/generations with a non-string model answers 400 naming model`, async () => {
      const res = await postJson(app, `${prefix}/images/generations`, { model: 3, prompt: 'a fox' }, bearer);
      assertError(res, 400, 'invalid_parameter', 'model');
    });

    test(`POST ${prefix}/images/generations with an unknown model answers 404 DeploymentNotFound`, async () => {
      const res = await postJson(app, `${prefix}/images/generations`, { model: 'gpt-5', prompt: 'a fox' }, bearer);
      assertError(res, 404, 'DeploymentNotFound');
    });

    test(`POST ${prefix}/images/edits takes model from the form and a Bearer key`, async () => {
      const res = await postForm(
        app,
        `${prefix}/images/edits`,
        [
          { name: 'model', value: 'gpt-image-1' },
          { name: 'prompt', value: 'add snow' },
          file('image[]', await solidPng(40, 40)),
        ],
        bearer,
      );
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().size, '40x40');
    });

    test(`POST ${prefix}/images/edits without model answers 400 naming model`, async () => {
      const res = await postForm(
        app,
        `${prefix}/images/edits`,
        [{ name: 'prompt', value: 'add snow' }, file('image', await solidPng(8, 8))],
        bearer,
      );
      assertError(res, 400, 'missing_required_parameter', 'model');
    });
  }
});

describe('easel routes', () => {
  test('GET /healthz answers 200 {status:"ok"} without a key', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
    assertRequestIds(res);
  });

  test('an unknown route answers 404 with code "404"', async () => {
    const res = await send(app, {
      method: 'GET',
      url: '/openai/deployments/dall-e-3/chat/completions?api-version=2024-10-21',
    });
    assertError(res, 404, '404', null);
  });

  test('a known path with the wrong method answers 404 with code "404"', async () => {
    const res = await send(app, { method: 'GET', url: generationsUrl('dall-e-3') });
    assertError(res, 404, '404', null);
  });
});
