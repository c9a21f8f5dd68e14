// Bodies that are not what a route reads: each is refused with the catalogue's code, writes
// nothing to storage, and leaves the server answering.
import { after, afterEach, before, describe, test } from 'node:test';

import { solidPng, startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertHealthy,
  assertNothingStored,
  editsUrl,
  file,
  generationsUrl,
  postForm,
  postJson,
  submitUrl,
} from './helpers.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(() => app.dispose());
afterEach(async () => {
  await assertNothingStored(app);
  await assertHealthy(app);
});

const ROUTES = [
  ['dall-e-3 generations', () => generationsUrl('dall-e-3')],
  ['gpt-image-1 generations', () => generationsUrl('gpt-image-1')],
  ['DALL-E 2 submit', () => submitUrl()],
  ['v1 generations', () => '/openai/v1/images/generations'],
] as const;

for (const [name, url] of ROUTES) {
  describe(`${name}: malformed bodies`, () => {
    test(`${name} answers malformed JSON with 400 invalid_json`, async () => {
      assertError(await postJson(app, url(), '{"prompt": "a cat",'), 400, 'invalid_json', null);
    });

    test(`${name} answers an empty JSON body with 400 invalid_json`, async () => {
      assertError(await postJson(app, url(), ''), 400, 'invalid_json');
    });

    for (const [what, body] of [
      ['a JSON array', '[{"prompt":"a cat"}]'],
      ['a JSON string', '"a cat"'],
      ['a JSON number', '42'],
      ['JSON null', 'null'],
    ] as const) {
      test(`${name} answers ${what} with 400 invalid_json`, async () => {
        assertError(await postJson(app, url(), body), 400, 'invalid_json');
      });
    }

    // Bug: Fastify's built-in text/plain parser handed the handler a string, so a wrong
    // Content-Type was reported as invalid JSON (400) instead of 415.
    test(`${name} answers a text/plain body with 415, not 400 invalid_json (text/plain parser bug)`, async () => {
      const res = await postJson(app, url(), '{"prompt":"a cat"}', { 'content-type': 'text/plain' });
      assertError(res, 415, 'unsupported_media_type', 'content-type');
    });

    test(`${name} answers a form-urlencoded body with 415`, async () => {
      const res = await postJson(app, url(), 'prompt=a+cat', { 'content-type': 'application/x-www-form-urlencoded' });
      assertError(res, 415, 'unsupported_media_type', 'content-type');
    });

    // Bug: DALL-E 2 submit did not check for multipart and answered 400 invalid_json.
    test(`${name} answers a multipart body with 415 (submit multipart bug)`, async () => {
      assertError(
        await postForm(app, url(), [{ name: 'prompt', value: 'a cat' }]),
        415,
        'unsupported_media_type',
        'content-type',
      );
    });

    test(`${name} answers a JSON body over the limit with 413 payload_too_large`, async () => {
      const body = JSON.stringify({ prompt: 'a cat', user: 'u'.repeat(1024 * 1024 + 1) });
      assertError(await postJson(app, url(), body), 413, 'payload_too_large', null);
    });
  });
}

describe('JSON edge cases', () => {
  test('a __proto__ key in the body is refused with 400 invalid_json', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), '{"prompt":"a cat","__proto__":{"n":5}}');
    assertError(res, 400, 'invalid_json');
  });

  test('a constructor.prototype key is refused with 400 invalid_json', async () => {
    const res = await postJson(
      app,
      generationsUrl('dall-e-3'),
      '{"prompt":"a cat","constructor":{"prototype":{"n":5}}}',
    );
    assertError(res, 400, 'invalid_json');
  });

  test('a plain constructor key is an unknown parameter', async () => {
    assertError(
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', constructor: 'x' }),
      400,
      'unknown_parameter',
      'constructor',
    );
  });

  test('a toString key is an unknown parameter', async () => {
    assertError(
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', toString: 'x' }),
      400,
      'unknown_parameter',
      'toString',
    );
  });

  test('application/json with a charset parameter is read as JSON', async () => {
    const res = await postJson(
      app,
      generationsUrl('dall-e-3'),
      { prompt: 'a cat', n: 3 },
      { 'content-type': 'application/json; charset=utf-8' },
    );
    assertError(res, 400, 'invalid_parameter', 'n');
  });
});

describe('edits: bodies that are not multipart', () => {
  test('a JSON body to edits answers 415 unsupported_media_type', async () => {
    assertError(
      await postJson(app, editsUrl('gpt-image-1'), { prompt: 'a hat' }),
      415,
      'unsupported_media_type',
      'content-type',
    );
  });

  test('a text/plain body to edits answers 415', async () => {
    assertError(
      await postJson(app, editsUrl('gpt-image-1'), 'a hat', { 'content-type': 'text/plain' }),
      415,
      'unsupported_media_type',
    );
  });

  test('multipart without a boundary answers 400 invalid_parameter', async () => {
    const res = await postJson(app, editsUrl('gpt-image-1'), 'x', { 'content-type': 'multipart/form-data' });
    assertError(res, 400, 'invalid_parameter');
  });

  // Bug: busboy's "Unexpected end of multipart data" was not recognised and became a 500.
  test('a truncated multipart body answers 400, not 500 (truncated multipart bug)', async () => {
    const boundary = 'xyzzy';
    const payload = `--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na hat\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG`;
    const res = await app.server.inject({
      method: 'POST',
      url: editsUrl('gpt-image-1'),
      headers: { 'api-key': TEST_KEY, 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload,
    });
    assertError(res, 400, 'invalid_parameter');
  });

  test('a multipart field named __proto__ answers 400 naming it', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: '__proto__', value: 'x' },
      { name: 'prompt', value: 'a hat' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'invalid_parameter', '__proto__');
  });

  test('a text field sent as a file part answers 400 naming it', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      file('prompt', Buffer.from('a hat'), 'text/plain', 'prompt.txt'),
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'invalid_parameter', 'prompt');
  });

  test('a field given twice answers 400 naming it', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'a hat' },
      { name: 'prompt', value: 'a scarf' },
      file('image', await solidPng(8, 8)),
    ]);
    assertError(res, 400, 'invalid_parameter', 'prompt');
  });
});
