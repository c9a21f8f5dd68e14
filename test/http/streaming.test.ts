// gpt-image-1 `stream: true` (docs/azure-api.md, "Streaming"): server-sent events, `partial_images` partial events
// with a 0-based index, then one completed event per image with usage.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { decode, solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertRequestIds,
  b64,
  editsUrl,
  file,
  generationsUrl,
  parseSse,
  postForm,
  postJson,
  type Response,
} from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());

const STREAM_FIELDS = ['b64_json', 'background', 'created_at', 'output_format', 'quality', 'size', 'type'];

function events(res: Response) {
  assert.equal(res.statusCode, 200, res.body.slice(0, 300));
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  assertRequestIds(res);
  const parsed = parseSse(res.body);
  for (const { event, data } of parsed) assert.equal(data.type, event, 'the data type names the event');
  return parsed;
}

function assertUsage(usage: any) {
  assert.deepEqual(Object.keys(usage).sort(), [
    'input_tokens',
    'input_tokens_details',
    'output_tokens',
    'total_tokens',
  ]);
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
}

describe('generations', () => {
  for (const partials of [0, 1, 2, 3]) {
    test(`stream with partial_images=${partials} sends ${partials} partial events indexed from 0, then one completed`, async () => {
      const res = await postJson(app, generationsUrl('gpt-image-1'), {
        prompt: 'a windmill',
        size: '1536x1024',
        quality: 'low',
        stream: true,
        partial_images: partials,
      });
      const all = events(res);
      assert.deepEqual(
        all.map((e) => e.event),
        [...Array(partials).fill('image_generation.partial_image'), 'image_generation.completed'],
      );
      for (const [index, { data }] of all.slice(0, partials).entries()) {
        assert.deepEqual(Object.keys(data).sort(), [...STREAM_FIELDS, 'partial_image_index'].sort());
        assert.equal(data.partial_image_index, index);
        const image = await decode(b64(data));
        assert.deepEqual([image.width, image.height, image.format], [1536, 1024, 'png']);
      }
      const completed = all.at(-1)!.data;
      assert.deepEqual(Object.keys(completed).sort(), [...STREAM_FIELDS, 'usage'].sort());
      assert.deepEqual(
        [completed.size, completed.quality, completed.output_format, completed.background],
        ['1536x1024', 'low', 'png', 'opaque'],
      );
      assertUsage(completed.usage);
      const image = await decode(b64(completed));
      assert.deepEqual([image.width, image.height], [1536, 1024]);
    });
  }

  test('the completed image equals the image the same request answers without streaming', async () => {
    const body = { prompt: 'a windmill', size: '1024x1024', quality: 'low', seed: 5 };
    const streamed = events(await postJson(app, generationsUrl('gpt-image-1'), { ...body, stream: true })).at(-1)!.data;
    const plain = (await postJson(app, generationsUrl('gpt-image-1'), body)).json();
    assert.equal(streamed.b64_json, plain.data[0].b64_json);
  });

  test('n=2 with partial_images=2 sends two partials per image and two completed events', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a mill',
      size: '1024x1024',
      quality: 'low',
      stream: true,
      n: 2,
      partial_images: 2,
    });
    const all = events(res);
    assert.equal(all.filter((e) => e.event === 'image_generation.partial_image').length, 4);
    assert.equal(all.filter((e) => e.event === 'image_generation.completed').length, 2);
  });

  test('a streamed jpeg sends jpeg partials and a jpeg final image', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a mill',
      size: '1024x1024',
      quality: 'low',
      stream: true,
      partial_images: 1,
      output_format: 'jpeg',
    });
    for (const { data } of events(res)) assert.equal((await decode(b64(data))).format, 'jpeg');
  });

  test('partial_images=4 answers 400 naming partial_images', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a mill',
      stream: true,
      partial_images: 4,
    });
    assertError(res, 400, 'invalid_parameter', 'partial_images');
  });

  test('stream="true" as a string in JSON answers 400 naming stream', async () => {
    assertError(
      await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a mill', stream: 'true' }),
      400,
      'invalid_parameter',
      'stream',
    );
  });

  test('partial_images without stream answers plain JSON', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a mill',
      size: '1024x1024',
      quality: 'low',
      partial_images: 2,
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
  });

  test('stream on dall-e-3 answers 400 unsupported_parameter', async () => {
    assertError(
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a mill', stream: true }),
      400,
      'unsupported_parameter',
      'stream',
    );
  });

  test('the v1 route streams too', async () => {
    const res = await postJson(app, '/openai/v1/images/generations', {
      model: 'gpt-image-1',
      prompt: 'a mill',
      size: '1024x1024',
      quality: 'low',
      stream: true,
      partial_images: 1,
    });
    assert.deepEqual(
      events(res).map((e) => e.event),
      ['image_generation.partial_image', 'image_generation.completed'],
    );
  });
});

describe('edits', () => {
  test('a streamed edit sends image_edit.partial_image events, then image_edit.completed with usage', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'add a hat' },
      { name: 'stream', value: 'true' },
      { name: 'partial_images', value: '2' },
      file('image', await solidPng(48, 32)),
    ]);
    const all = events(res);
    assert.deepEqual(
      all.map((e) => e.event),
      ['image_edit.partial_image', 'image_edit.partial_image', 'image_edit.completed'],
    );
    assert.deepEqual(
      all.slice(0, 2).map((e) => e.data.partial_image_index),
      [0, 1],
    );
    for (const { data } of all) {
      const image = await decode(b64(data));
      assert.deepEqual([image.width, image.height], [48, 32]);
    }
    const completed = all.at(-1)!.data;
    assertUsage(completed.usage);
    assert.ok((completed.usage as any).input_tokens_details.image_tokens > 0);
    assert.equal(completed.size, '48x32');
  });

  test('a streamed edit with partial_images="4" answers 400 naming partial_images', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'add a hat' },
      { name: 'stream', value: 'true' },
      { name: 'partial_images', value: '4' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'invalid_parameter', 'partial_images');
  });
});
