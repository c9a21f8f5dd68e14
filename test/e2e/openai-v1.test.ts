// The plain `OpenAI` client pointed at easel's v1 surfaces (/openai/v1 and /v1), key as Bearer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import OpenAI, { AuthenticationError, NotFoundError, toFile } from 'openai';

import { decode, halfMask, SECOND_KEY, solidPng, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { download, PNG_MAGIC, startListening, UUID_RE } from './helpers.ts';

let app: TestApp;
let base: string;

before(async () => {
  ({ app, base } = await startListening());
});
after(async () => {
  await app?.dispose();
});

for (const prefix of ['/openai/v1', '/v1']) {
  describe(`OpenAI({ baseURL: base + '${prefix}' })`, () => {
    /** The client, recording the headers of every real request it sends. */
    function client(apiKey = TEST_KEY) {
      const sent: { url: string; headers: Headers }[] = [];
      const openai = new OpenAI({
        baseURL: base + prefix,
        apiKey,
        maxRetries: 0,
        fetch: async (url, init) => {
          if (String(url).startsWith('http')) sent.push({ url: String(url), headers: new Headers(init?.headers) });
          return fetch(url, init);
        },
      });
      return { openai, sent };
    }

    it('gpt-image-1 generate → b64 PNG + usage; the key travels as Bearer, no api-key header', async () => {
      const { openai, sent } = client();
      const response = await openai.images.generate({
        model: 'gpt-image-1',
        prompt: 'a kite',
        size: '1024x1536',
        quality: 'low',
      });
      const image = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
      assert.deepEqual([image.format, image.width, image.height], ['png', 1024, 1536]);
      assert.ok(response.usage);
      assert.equal(sent.length, 1);
      assert.equal(new URL(sent[0]!.url).pathname, `${prefix}/images/generations`);
      assert.equal(sent[0]!.headers.get('authorization'), `Bearer ${TEST_KEY}`);
      assert.equal(sent[0]!.headers.get('api-key'), null);
      assert.match(response._request_id ?? '', UUID_RE);
    });

    it('the second key works too; a wrong Bearer key is an AuthenticationError', async () => {
      const ok = await client(SECOND_KEY).openai.images.generate({
        model: 'dall-e-3',
        prompt: 'a kite',
        response_format: 'b64_json',
      });
      assert.ok(ok.data![0]!.b64_json);
      await assert.rejects(
        client('wrong-key-wrong-key').openai.images.generate({ model: 'dall-e-3', prompt: 'x' }),
        AuthenticationError,
      );
    });

    it('dall-e-3 generate, response_format url → a downloadable PNG of the requested size', async () => {
      const response = await client().openai.images.generate({
        model: 'dall-e-3',
        prompt: 'a kite',
        size: '1024x1792',
        response_format: 'url',
      });
      const item = response.data![0]!;
      assert.equal(typeof item.revised_prompt, 'string');
      const file = await download(item.url!);
      assert.equal(file.status, 200);
      assert.deepEqual(file.bytes.subarray(0, 4), PNG_MAGIC);
      const image = await decode(file.bytes);
      assert.deepEqual([image.width, image.height], [1024, 1792]);
    });

    it('dall-e-3 generate, response_format b64_json', async () => {
      const response = await client().openai.images.generate({
        model: 'dall-e-3',
        prompt: 'a kite',
        response_format: 'b64_json',
      });
      assert.equal(response.data![0]!.url, undefined);
      const image = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
      assert.deepEqual([image.width, image.height], [1024, 1024]);
    });

    it('gpt-image-1 edit with a mask keeps the unmasked half', async () => {
      const input = await solidPng(64, 64, [30, 160, 90, 255]);
      const response = await client().openai.images.edit({
        model: 'gpt-image-1',
        prompt: 'a kite in the sky',
        image: await toFile(input, 'in.png', { type: 'image/png' }),
        mask: await toFile(await halfMask(64, 64), 'mask.png', { type: 'image/png' }),
      });
      const output = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
      const original = await decode(input);
      assert.deepEqual([output.width, output.height], [64, 64]);
      for (let y = 0; y < 64; y++) {
        for (let x = 32; x < 64; x++) {
          const i = (y * 64 + x) * 4;
          assert.deepEqual(
            [...output.data.subarray(i, i + 4)],
            [...original.data.subarray(i, i + 4)],
            `pixel ${x},${y}`,
          );
        }
      }
    });

    it('an unknown model → NotFoundError DeploymentNotFound', async () => {
      await assert.rejects(client().openai.images.generate({ model: 'dall-e-9', prompt: 'x' }), (error: unknown) => {
        assert.ok(error instanceof NotFoundError, String(error));
        assert.equal(error.code, 'DeploymentNotFound');
        return true;
      });
    });
  });
}
