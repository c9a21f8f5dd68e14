// The validation rules a user meets most, one readable test each: n bounds, prompt limits,
// parameters of another family, cross-field rules, deployments and operations per family.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, editsUrl, file, generationsUrl, postForm, postJson, submitUrl } from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

const dalle3 = (body: object) => postJson(app, generationsUrl('dall-e-3'), { response_format: 'b64_json', ...body });
const gptImage = (body: object) =>
  postJson(app, generationsUrl('gpt-image-1'), { size: '1024x1024', quality: 'low', ...body });
const dalle2 = (body: object) => postJson(app, submitUrl(), body);

describe('n', () => {
  test('dall-e-3 rejects n=2 with 400 naming n', async () => {
    assertError(await dalle3({ prompt: 'a cat', n: 2 }), 400, 'invalid_parameter', 'n');
  });

  test('dall-e-3 rejects n=0 with 400 naming n', async () => {
    assertError(await dalle3({ prompt: 'a cat', n: 0 }), 400, 'invalid_parameter', 'n');
  });

  test('dall-e-3 accepts n=1', async () => {
    assert.equal((await dalle3({ prompt: 'a cat', n: 1 })).statusCode, 200);
  });

  test('gpt-image-1 rejects n=11 and n=0 with 400 naming n', async () => {
    assertError(await gptImage({ prompt: 'a cat', n: 11 }), 400, 'invalid_parameter', 'n');
    assertError(await gptImage({ prompt: 'a cat', n: 0 }), 400, 'invalid_parameter', 'n');
  });

  test('dall-e-2 submit accepts n=10 and rejects n=11 naming n', async () => {
    assert.equal((await dalle2({ prompt: 'a cat', n: 10, size: '256x256' })).statusCode, 202);
    assertError(await dalle2({ prompt: 'a cat', n: 11 }), 400, 'invalid_parameter', 'n');
  });

  test('a null parameter counts as absent (n: null gives the default, one image)', async () => {
    const res = await dalle3({ prompt: 'a cat', n: null });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().data.length, 1);
  });
});

describe('prompt limits', () => {
  test('dall-e-2 accepts a 1000-character prompt and rejects 1001 naming prompt', async () => {
    assert.equal((await dalle2({ prompt: 'a'.repeat(1000), size: '256x256' })).statusCode, 202);
    assertError(await dalle2({ prompt: 'a'.repeat(1001) }), 400, 'invalid_parameter', 'prompt');
  });

  test('dall-e-2 counts characters, not UTF-16 units: 1000 emoji pass', async () => {
    assert.equal((await dalle2({ prompt: '🦊'.repeat(1000), size: '256x256' })).statusCode, 202);
  });

  test('dall-e-3 accepts a 4000-character prompt and rejects 4001 naming prompt', async () => {
    assert.equal((await dalle3({ prompt: 'b'.repeat(4000) })).statusCode, 200);
    assertError(await dalle3({ prompt: 'b'.repeat(4001) }), 400, 'invalid_parameter', 'prompt');
  });

  test('gpt-image-1 accepts a 32000-character prompt and rejects 32001 naming prompt', async () => {
    assert.equal((await gptImage({ prompt: 'c'.repeat(32000) })).statusCode, 200);
    assertError(await gptImage({ prompt: 'c'.repeat(32001) }), 400, 'invalid_parameter', 'prompt');
  });

  test('gpt-image-1 edits reject a 32001-character prompt naming prompt', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'd'.repeat(32001) },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'invalid_parameter', 'prompt');
  });

  test('a prompt that is a number answers 400 invalid_parameter naming prompt', async () => {
    assertError(await dalle3({ prompt: 12 }), 400, 'invalid_parameter', 'prompt');
  });
});

describe('parameters of another family', () => {
  test('gpt-image-1 rejects style with 400 unsupported_parameter naming style', async () => {
    assertError(await gptImage({ prompt: 'a cat', style: 'vivid' }), 400, 'unsupported_parameter', 'style');
  });

  test('gpt-image-1 rejects response_format with 400 unsupported_parameter', async () => {
    assertError(
      await gptImage({ prompt: 'a cat', response_format: 'b64_json' }),
      400,
      'unsupported_parameter',
      'response_format',
    );
  });

  test('dall-e-3 rejects output_format with 400 unsupported_parameter', async () => {
    assertError(await dalle3({ prompt: 'a cat', output_format: 'png' }), 400, 'unsupported_parameter', 'output_format');
  });

  test('dall-e-3 rejects stream with 400 unsupported_parameter', async () => {
    assertError(await dalle3({ prompt: 'a cat', stream: true }), 400, 'unsupported_parameter', 'stream');
  });

  test('dall-e-2 submit rejects response_format with 400 unsupported_parameter: its results are always URLs', async () => {
    assertError(
      await dalle2({ prompt: 'a cat', response_format: 'b64_json' }),
      400,
      'unsupported_parameter',
      'response_format',
    );
  });

  test('dall-e-2 submit rejects quality with 400 unsupported_parameter', async () => {
    assertError(await dalle2({ prompt: 'a cat', quality: 'hd' }), 400, 'unsupported_parameter', 'quality');
  });

  test('generations reject the edits-only input_fidelity as an unknown parameter', async () => {
    assertError(
      await gptImage({ prompt: 'a cat', input_fidelity: 'high' }),
      400,
      'unknown_parameter',
      'input_fidelity',
    );
  });

  test('an unknown field answers 400 unknown_parameter naming it', async () => {
    assertError(await dalle3({ prompt: 'a cat', steps: 30 }), 400, 'unknown_parameter', 'steps');
  });
});

describe('cross-field rules', () => {
  test('gpt-image-1 rejects jpeg with a transparent background naming background', async () => {
    assertError(
      await gptImage({ prompt: 'a cat', output_format: 'jpeg', background: 'transparent' }),
      400,
      'invalid_parameter',
      'background',
    );
  });

  test('gpt-image-1 accepts webp and png with a transparent background', async () => {
    assert.equal(
      (await gptImage({ prompt: 'a cat', output_format: 'webp', background: 'transparent' })).statusCode,
      200,
    );
    assert.equal(
      (await gptImage({ prompt: 'a cat', output_format: 'png', background: 'transparent' })).statusCode,
      200,
    );
  });

  test('gpt-image-1 rejects output_compression 50 with png naming output_compression', async () => {
    assertError(
      await gptImage({ prompt: 'a cat', output_compression: 50 }),
      400,
      'invalid_parameter',
      'output_compression',
    );
    assertError(
      await gptImage({ prompt: 'a cat', output_format: 'png', output_compression: 0 }),
      400,
      'invalid_parameter',
      'output_compression',
    );
  });

  test('gpt-image-1 accepts output_compression with jpeg and webp', async () => {
    assert.equal((await gptImage({ prompt: 'a cat', output_format: 'jpeg', output_compression: 50 })).statusCode, 200);
    assert.equal((await gptImage({ prompt: 'a cat', output_format: 'webp', output_compression: 0 })).statusCode, 200);
  });

  test('gpt-image-1 edits reject jpeg with a transparent background naming background', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'x' },
      { name: 'output_format', value: 'jpeg' },
      { name: 'background', value: 'transparent' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'invalid_parameter', 'background');
  });
});

describe('deployments and operations', () => {
  test('edits on a dall-e-3 deployment answer 400 OperationNotSupported', async () => {
    const res = await postForm(app, editsUrl('dall-e-3'), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'OperationNotSupported', 'model');
  });

  test('generations on an unknown deployment answer 404 DeploymentNotFound', async () => {
    assertError(
      await postJson(app, generationsUrl('no-such-deployment', '2025-04-01-preview'), { prompt: 'a cat' }),
      404,
      'DeploymentNotFound',
      null,
    );
  });

  test('edits on an unknown deployment answer 404 DeploymentNotFound', async () => {
    const res = await postForm(app, editsUrl('no-such-deployment'), [
      { name: 'prompt', value: 'x' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 404, 'DeploymentNotFound');
  });

  test('a deployment name in another case is a different deployment: 404', async () => {
    assertError(
      await postJson(app, generationsUrl('DALL-E-3', '2024-10-21'), { prompt: 'a cat' }),
      404,
      'DeploymentNotFound',
    );
  });

  test('an unknown deployment is reported before the body is validated', async () => {
    assertError(await postJson(app, generationsUrl('nope', '2024-10-21'), { bogus: 1 }), 404, 'DeploymentNotFound');
  });

  test('the body model does not override the deployment in the URL', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { model: 'gpt-image-1', prompt: 'a cat' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(typeof res.json().data[0].revised_prompt, 'string');
  });
});
