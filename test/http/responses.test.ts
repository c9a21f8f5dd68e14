// What each family answers (docs/azure-api.md: responses, annotations): item shapes, sizes, formats, n, transparency
// and
// seeds, checked by decoding the returned bytes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { FAMILIES } from '../../src/contract/families.ts';
import { decode, startTestApp, type TestApp } from '../helpers/app.ts';
import { b64, generationsUrl, pathOf, pollOperation, postJson, submit } from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

const SEVERITY_KEYS = ['hate', 'self_harm', 'sexual', 'violence'];
const safe = { filtered: false, severity: 'safe' };

async function generate(deployment: string, body: object) {
  const res = await postJson(app, generationsUrl(deployment), body);
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as { created: number; data: Array<Record<string, any>>; [key: string]: any };
}

async function download(url: string) {
  const res = await app.server.inject({ method: 'GET', url: pathOf(url) });
  assert.equal(res.statusCode, 200);
  return { bytes: res.rawPayload, contentType: res.headers['content-type'] };
}

describe('dall-e-3', () => {
  test('dall-e-3 answers with a url, revised_prompt and Azure filter annotations by default', async () => {
    const body = await generate('dall-e-3', { prompt: 'a red barn in snow' });
    assert.deepEqual(Object.keys(body).sort(), ['created', 'data']);
    assert.ok(Math.abs(body.created - Date.now() / 1000) < 600);
    const item = body.data[0]!;
    assert.deepEqual(Object.keys(item).sort(), [
      'content_filter_results',
      'prompt_filter_results',
      'revised_prompt',
      'url',
    ]);
    assert.equal(typeof item.revised_prompt, 'string');
    assert.ok(item.revised_prompt.length > 0);
    // Azure's four categories, and (a placeholder picture) easel's note that the image classifier did not run.
    assert.deepEqual(Object.keys(item.content_filter_results).sort(), [...SEVERITY_KEYS, 'image_filter'].sort());
    for (const key of SEVERITY_KEYS) assert.deepEqual(item.content_filter_results[key], safe);
    assert.equal(item.content_filter_results.image_filter.ran, false);
    assert.deepEqual(
      Object.keys(item.prompt_filter_results).sort(),
      [...SEVERITY_KEYS, 'custom_blocklists', 'jailbreak', 'profanity'].sort(),
    );
    assert.deepEqual(item.prompt_filter_results.profanity, { filtered: false, detected: false });
    assert.deepEqual(item.prompt_filter_results.jailbreak, { filtered: false, detected: false });
    assert.deepEqual(item.prompt_filter_results.custom_blocklists, { filtered: false, details: [] });
    const image = await download(item.url);
    assert.equal(image.contentType, 'image/png');
  });

  test('dall-e-3 answers b64_json when asked, with the same annotations and no url', async () => {
    const body = await generate('dall-e-3', { prompt: 'a red barn in snow', response_format: 'b64_json' });
    const item = body.data[0]!;
    assert.deepEqual(Object.keys(item).sort(), [
      'b64_json',
      'content_filter_results',
      'prompt_filter_results',
      'revised_prompt',
    ]);
    assert.equal((await decode(b64(item))).format, 'png');
  });

  for (const size of (FAMILIES['dall-e-3'].generation.size as { values: readonly string[] }).values) {
    test(`dall-e-3 size ${size} decodes to exactly ${size}`, async () => {
      const body = await generate('dall-e-3', { prompt: 'a barn', size, response_format: 'b64_json' });
      const image = await decode(b64(body.data[0]!));
      assert.equal(`${image.width}x${image.height}`, size);
    });
  }

  test('dall-e-3 accepts quality hd and style natural', async () => {
    const body = await generate('dall-e-3', {
      prompt: 'a barn',
      quality: 'hd',
      style: 'natural',
      response_format: 'b64_json',
    });
    assert.equal(body.data.length, 1);
  });

  test('dall-e-3 without a size answers 1024x1024', async () => {
    const image = await decode(
      b64((await generate('dall-e-3', { prompt: 'a barn', response_format: 'b64_json' })).data[0]!),
    );
    assert.deepEqual([image.width, image.height], [1024, 1024]);
  });
});

describe('gpt-image-1', () => {
  test('gpt-image-1 answers b64_json only, with usage and background/output_format/quality/size', async () => {
    const body = await generate('gpt-image-1', { prompt: 'a fox in a hat', size: '1024x1024', quality: 'low' });
    assert.deepEqual(Object.keys(body).sort(), [
      'background',
      'created',
      'data',
      'output_format',
      'quality',
      'size',
      'usage',
    ]);
    assert.deepEqual(Object.keys(body.data[0]!), ['b64_json']);
    assert.equal(body.background, 'opaque');
    assert.equal(body.output_format, 'png');
    assert.equal(body.quality, 'low');
    assert.equal(body.size, '1024x1024');
    const { usage } = body;
    assert.deepEqual(Object.keys(usage).sort(), [
      'input_tokens',
      'input_tokens_details',
      'output_tokens',
      'total_tokens',
    ]);
    assert.deepEqual(Object.keys(usage.input_tokens_details).sort(), ['image_tokens', 'text_tokens']);
    for (const n of [
      usage.input_tokens,
      usage.output_tokens,
      usage.total_tokens,
      usage.input_tokens_details.text_tokens,
    ]) {
      assert.ok(Number.isInteger(n) && n > 0);
    }
    assert.equal(usage.input_tokens_details.image_tokens, 0);
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
    assert.equal(usage.input_tokens, usage.input_tokens_details.text_tokens);
  });

  for (const [size, expected] of [
    ['1024x1024', '1024x1024'],
    ['1536x1024', '1536x1024'],
    ['1024x1536', '1024x1536'],
    ['auto', '1024x1024'],
  ]) {
    test(`gpt-image-1 size ${size} decodes to exactly ${expected} and reports size ${expected}`, async () => {
      const body = await generate('gpt-image-1', { prompt: 'a fox', size, quality: 'low' });
      const image = await decode(b64(body.data[0]!));
      assert.equal(`${image.width}x${image.height}`, expected);
      assert.equal(body.size, expected);
    });
  }

  for (const format of ['png', 'jpeg', 'webp']) {
    test(`gpt-image-1 output_format ${format} decodes as ${format}`, async () => {
      const body = await generate('gpt-image-1', {
        prompt: 'a fox',
        size: '1024x1024',
        quality: 'low',
        output_format: format,
      });
      assert.equal((await decode(b64(body.data[0]!))).format, format);
      assert.equal(body.output_format, format);
    });
  }

  for (const [quality, reported] of [
    ['low', 'low'],
    ['medium', 'medium'],
    ['high', 'high'],
    ['auto', 'high'],
  ]) {
    test(`gpt-image-1 quality ${quality} is reported as ${reported}`, async () => {
      const body = await generate('gpt-image-1', { prompt: 'a fox', size: '1024x1024', quality });
      assert.equal(body.quality, reported);
    });
  }

  test('gpt-image-1 n=3 answers three different images', async () => {
    const body = await generate('gpt-image-1', { prompt: 'a fox', size: '1024x1024', quality: 'low', n: 3 });
    assert.equal(body.data.length, 3);
    assert.equal(new Set(body.data.map((item) => item.b64_json)).size, 3);
  });

  test('gpt-image-1 n=10 answers ten images', async () => {
    const body = await generate('gpt-image-1', { prompt: 'a fox', size: '1024x1024', quality: 'low', n: 10 });
    assert.equal(body.data.length, 10);
  });

  for (const format of ['png', 'webp']) {
    test(`gpt-image-1 transparent background in ${format} has alpha-0 pixels and says transparent`, async () => {
      const body = await generate('gpt-image-1', {
        prompt: 'a fox',
        size: '1024x1024',
        quality: 'low',
        background: 'transparent',
        output_format: format,
      });
      assert.equal(body.background, 'transparent');
      const image = await decode(b64(body.data[0]!));
      assert.ok(countAlpha(image.data, (a) => a === 0) > 0, 'some pixels are fully transparent');
    });
  }

  test('gpt-image-1 opaque background has no transparent pixel', async () => {
    const body = await generate('gpt-image-1', {
      prompt: 'a fox',
      size: '1024x1024',
      quality: 'low',
      background: 'opaque',
    });
    const image = await decode(b64(body.data[0]!));
    assert.equal(
      countAlpha(image.data, (a) => a !== 255),
      0,
    );
  });
});

describe('dall-e-2', () => {
  for (const size of ['256x256', '512x512', '1024x1024']) {
    test(`a dall-e-2 operation with size ${size} links a PNG of exactly ${size}`, async () => {
      const id = await submit(app, { prompt: 'a kite', size });
      const { body } = await pollOperation(app, id);
      assert.equal(body.status, 'succeeded');
      const { bytes, contentType } = await download(body.result.data[0].url);
      assert.equal(contentType, 'image/png');
      const image = await decode(bytes);
      assert.equal(`${image.width}x${image.height}`, size);
    });
  }

  test('a dall-e-2 operation with n=3 has three links to three different images', async () => {
    const id = await submit(app, { prompt: 'a kite', size: '256x256', n: 3 });
    const { body } = await pollOperation(app, id);
    assert.equal(body.result.data.length, 3);
    const images = await Promise.all(body.result.data.map((item: { url: string }) => download(item.url)));
    assert.equal(new Set(images.map((i) => i.bytes.toString('base64'))).size, 3);
  });
});

describe('seeds', () => {
  const request = { prompt: 'a lighthouse', size: '1024x1024', quality: 'low' };

  test('the same request with the same seed gives identical bytes', async () => {
    const a = await generate('gpt-image-1', { ...request, seed: 7 });
    const b = await generate('gpt-image-1', { ...request, seed: 7 });
    assert.equal(a.data[0]!.b64_json, b.data[0]!.b64_json);
  });

  test('different seeds give different images', async () => {
    const a = await generate('gpt-image-1', { ...request, seed: 7 });
    const b = await generate('gpt-image-1', { ...request, seed: 8 });
    assert.notEqual(a.data[0]!.b64_json, b.data[0]!.b64_json);
  });

  test('without a seed the same request still gives identical bytes', async () => {
    const a = await generate('gpt-image-1', request);
    const b = await generate('gpt-image-1', request);
    assert.equal(a.data[0]!.b64_json, b.data[0]!.b64_json);
  });

  test('dall-e-3 with the same seed gives identical bytes behind different links', async () => {
    const a = await generate('dall-e-3', { prompt: 'a lighthouse', seed: 3 });
    const b = await generate('dall-e-3', { prompt: 'a lighthouse', seed: 3 });
    assert.notEqual(a.data[0]!.url, b.data[0]!.url);
    assert.deepEqual((await download(a.data[0]!.url)).bytes, (await download(b.data[0]!.url)).bytes);
  });
});

function countAlpha(rgba: Buffer, match: (alpha: number) => boolean): number {
  let count = 0;
  for (let i = 3; i < rgba.length; i += 4) if (match(rgba[i]!)) count++;
  return count;
}
