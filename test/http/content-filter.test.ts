// The content-filter hooks (docs/azure-api.md: annotations, errors): a blocklisted prompt is refused before anything
// is queued or stored; an image the image filter blocks is never stored or returned.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { categoriesAt } from '../../src/contract/annotations.ts';
import type { ImageFilter } from '../../src/safety/index.ts';
import { solidPng, startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertNothingStored,
  editsUrl,
  file,
  generationsUrl,
  operationUrl,
  parseSse,
  pollOperation,
  postForm,
  postJson,
  send,
  submit,
} from './helpers.ts';

function assertPromptBlocked(res: Awaited<ReturnType<typeof postJson>>) {
  const error = assertError(res, 400, 'content_policy_violation', null);
  assert.equal(error.type, 'invalid_request_error');
  const inner = error.inner_error as { code: string; content_filter_results: Record<string, any> };
  assert.equal(inner.code, 'ResponsibleAIPolicyViolation');
  assert.equal(inner.content_filter_results.custom_blocklists.filtered, true);
  assert.deepEqual(inner.content_filter_results.custom_blocklists.details, [{ id: 'EASEL_BLOCKLIST', filtered: true }]);
}

describe('prompt blocklist (EASEL_BLOCKLIST)', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ env: { EASEL_BLOCKLIST: 'forbiddenword' } });
  });
  after(() => app.dispose());

  test('dall-e-3 answers 400 content_policy_violation with the blocklist in inner_error', async () => {
    assertPromptBlocked(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a forbiddenword on a hill' }));
    await assertNothingStored(app);
  });

  test('gpt-image-1 answers 400 content_policy_violation', async () => {
    assertPromptBlocked(await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'forbiddenword' }));
  });

  test('a streamed gpt-image-1 generation is refused with an ordinary 400 before any event', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'forbiddenword',
      stream: true,
      partial_images: 2,
    });
    assertPromptBlocked(res);
  });

  test('a gpt-image-1 edit answers 400 content_policy_violation', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'add a forbiddenword' },
      file('image', await solidPng(8, 8)),
    ]);
    assertPromptBlocked(res);
  });

  test('the v1 route answers 400 content_policy_violation', async () => {
    const res = await postJson(
      app,
      '/v1/images/generations',
      { model: 'dall-e-3', prompt: 'forbiddenword' },
      { authorization: `Bearer ${TEST_KEY}` },
    );
    assertPromptBlocked(res);
  });

  test('matching ignores case and punctuation around the word', async () => {
    assertPromptBlocked(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'A FORBIDDENWORD!' }));
    assertPromptBlocked(await postJson(app, generationsUrl('dall-e-3'), { prompt: '"forbiddenword", she said' }));
  });

  test('a word that contains the term ("forbiddenwords") passes', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), {
      prompt: 'forbiddenwords everywhere',
      response_format: 'b64_json',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().data[0].prompt_filter_results.custom_blocklists, { filtered: false, details: [] });
  });

  test('a DALL-E 2 submit answers 202; the operation reads failed with error code contentFilter and can be deleted', async () => {
    const id = await submit(app, { prompt: 'a forbiddenword kite' });
    const { body } = await pollOperation(app, id);
    assert.equal(body.status, 'failed');
    assert.equal(body.error.code, 'contentFilter');
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.result, undefined);
    assert.equal((await send(app, { method: 'DELETE', url: operationUrl(id) })).statusCode, 204);
  });
});

describe('image filter that blocks everything', () => {
  const results = { ...categoriesAt('safe'), sexual: { filtered: true, severity: 'high' as const } };
  const blockAll: ImageFilter = { name: 'test', check: async () => ({ blocked: true, results }) };
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ imageFilter: blockAll });
  });
  after(() => app.dispose());

  test('dall-e-3 answers 400 contentFilter and stores nothing', async () => {
    assertError(await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' }), 400, 'contentFilter', null);
    await assertNothingStored(app);
  });

  test('the refusal carries the image annotations in inner_error, so a client can tell which category withheld it', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' });
    const inner = res.json().error.inner_error as { code: string; content_filter_results: unknown };
    assert.equal(inner.code, 'ResponsibleAIPolicyViolation');
    assert.deepEqual(inner.content_filter_results, results);
    const streamed = parseSse(
      (await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a cat', stream: true })).body,
    ).at(-1)!;
    assert.deepEqual(
      (streamed.data.error as { inner_error: { content_filter_results: unknown } }).inner_error.content_filter_results,
      results,
    );
  });

  test('gpt-image-1 answers 400 contentFilter', async () => {
    assertError(await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a cat', n: 2 }), 400, 'contentFilter');
  });

  test('a gpt-image-1 edit answers 400 contentFilter', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'a hat' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'contentFilter');
  });

  test('a stream ends with an error event carrying contentFilter and no completed image', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a cat', stream: true });
    assert.equal(res.statusCode, 200);
    const events = parseSse(res.body);
    const last = events.at(-1)!;
    assert.equal(last.event, 'error');
    assert.equal((last.data.error as { code: string }).code, 'contentFilter');
    assert.ok(!events.some((e) => e.event.endsWith('.completed')));
  });

  test('bug: partial images were streamed before the image filter saw them — blocked previews are not sent', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a cat',
      stream: true,
      partial_images: 3,
    });
    const events = parseSse(res.body);
    assert.deepEqual(
      events.map((e) => e.event),
      ['error'],
    );
  });

  test('a DALL-E 2 operation succeeds with result.data[0].error.code contentFilter and stores nothing', async () => {
    const id = await submit(app, { prompt: 'a cat', size: '256x256' });
    const { body } = await pollOperation(app, id);
    assert.equal(body.status, 'succeeded');
    assert.equal(body.result.data.length, 1);
    assert.deepEqual(Object.keys(body.result.data[0]), ['error']);
    assert.equal(body.result.data[0].error.code, 'contentFilter');
    await assertNothingStored(app);
  });
});

describe('rule-based prompt filter (the default)', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({
      config: {
        deployments: [
          { name: 'dall-e-3', model: 'dall-e-3', engine: 'placeholder' },
          { name: 'gpt-image-1', model: 'gpt-image-1', engine: 'placeholder' },
          { name: 'lenient', model: 'dall-e-3', engine: 'placeholder', safety: { threshold: 'high' } },
        ],
      },
    });
  });
  after(() => app.dispose());

  test('a violent dall-e-3 prompt answers 400 content_policy_violation with violence filtered in inner_error', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a st4bbing in an alley' });
    const error = assertError(res, 400, 'content_policy_violation', null);
    const inner = error.inner_error as { code: string; content_filter_results: Record<string, unknown> };
    assert.equal(inner.code, 'ResponsibleAIPolicyViolation');
    assert.deepEqual(inner.content_filter_results, {
      hate: { filtered: false, severity: 'safe' },
      sexual: { filtered: false, severity: 'safe' },
      violence: { filtered: true, severity: 'medium' },
      self_harm: { filtered: false, severity: 'safe' },
      profanity: { filtered: false, detected: false },
      jailbreak: { filtered: false, detected: false },
      custom_blocklists: { filtered: false, details: [] },
    });
    await assertNothingStored(app);
  });

  test('an allowed dall-e-3 prompt carries its real severities in prompt_filter_results', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), {
      prompt: 'a soldier with a sword',
      response_format: 'b64_json',
    });
    assert.equal(res.statusCode, 200, res.body);
    const results = res.json().data[0].prompt_filter_results;
    assert.deepEqual(results.violence, { filtered: false, severity: 'low' });
    assert.deepEqual(results.hate, { filtered: false, severity: 'safe' });
  });

  test('a deployment with safety.threshold high serves a medium prompt', async () => {
    const res = await postJson(app, generationsUrl('lenient'), {
      prompt: 'a stabbing in an alley',
      response_format: 'b64_json',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().data[0].prompt_filter_results.violence, { filtered: false, severity: 'medium' });
  });

  test('gpt-image-1 with moderation low serves a medium prompt and refuses a high one', async () => {
    assert.equal(
      (await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a stabbing in an alley', moderation: 'low' }))
        .statusCode,
      200,
    );
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a beheading', moderation: 'low' });
    assertError(res, 400, 'content_policy_violation', null);
  });
});
