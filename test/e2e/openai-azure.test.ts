// The official `openai` npm client (AzureOpenAI) against a real easel server on 127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  APIUserAbortError,
  AuthenticationError,
  AzureOpenAI,
  BadRequestError,
  NotFoundError,
  RateLimitError,
  toFile,
} from 'openai';

import { decode, halfMask, solidPng, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { download, GatedEngine, JPEG_MAGIC, PNG_MAGIC, startListening, UUID_RE, waitFor } from './helpers.ts';

const API_VERSION = '2025-04-01-preview';
const PROMPT = 'a red bicycle leaning on a blue wall';

let app: TestApp;
let base: string;

before(async () => {
  ({ app, base } = await startListening());
});
after(async () => {
  await app?.dispose();
});

function client(options: Partial<ConstructorParameters<typeof AzureOpenAI>[0]> = {}) {
  return new AzureOpenAI({ endpoint: base, apiKey: TEST_KEY, apiVersion: API_VERSION, maxRetries: 0, ...options });
}

/** Every pixel of the right half (the part the half mask keeps) is the same in both images. */
function assertRightHalfUnchanged(
  output: Awaited<ReturnType<typeof decode>>,
  input: Awaited<ReturnType<typeof decode>>,
) {
  assert.equal(output.width, input.width);
  assert.equal(output.height, input.height);
  let differing = 0;
  for (let y = 0; y < input.height; y++) {
    for (let x = Math.ceil(input.width / 2); x < input.width; x++) {
      const i = (y * input.width + x) * 4;
      if (output.data.subarray(i, i + 4).compare(input.data.subarray(i, i + 4)) !== 0) differing++;
    }
  }
  assert.equal(differing, 0, `${differing} pixels outside the mask changed`);
}

describe('AzureOpenAI with a client-level deployment (gpt-image-1)', () => {
  const gpt = () => client({ deployment: 'gpt-image-1' });

  it('images.generate: n=2, 1536x1024, jpeg → two b64 JPEGs of that size with usage', async () => {
    const response = await gpt().images.generate({
      model: 'gpt-image-1',
      prompt: PROMPT,
      n: 2,
      size: '1536x1024',
      output_format: 'jpeg',
    });
    assert.equal(response.data?.length, 2);
    for (const item of response.data!) {
      assert.equal(item.url, undefined);
      const bytes = Buffer.from(item.b64_json!, 'base64');
      assert.deepEqual(bytes.subarray(0, 3), JPEG_MAGIC);
      const image = await decode(bytes);
      assert.deepEqual([image.format, image.width, image.height], ['jpeg', 1536, 1024]);
    }
    assert.ok(response.usage, 'usage is present');
    assert.ok(response.usage.total_tokens > 0);
    assert.equal(response.usage.total_tokens, response.usage.input_tokens + response.usage.output_tokens);
  });

  it('images.edit: one typed PNG file', async () => {
    const input = await solidPng(256, 256, [200, 40, 40, 255]);
    const response = await gpt().images.edit({
      model: 'gpt-image-1',
      prompt: 'add a hat',
      image: await toFile(input, 'in.png', { type: 'image/png' }),
    });
    assert.equal(response.data?.length, 1);
    const image = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
    assert.deepEqual([image.format, image.width, image.height], ['png', 256, 256]);
    assert.ok(response.usage);
  });

  it('images.edit: an array of images (image[]) and a mask; the unmasked half is unchanged', async () => {
    const first = await solidPng(128, 128, [10, 200, 30, 255]);
    const second = await solidPng(128, 128, [250, 250, 0, 255]);
    const response = await gpt().images.edit({
      model: 'gpt-image-1',
      prompt: 'combine them',
      image: [
        await toFile(first, 'a.png', { type: 'image/png' }),
        await toFile(second, 'b.png', { type: 'image/png' }),
      ],
      mask: await toFile(await halfMask(128, 128), 'mask.png', { type: 'image/png' }),
    });
    const output = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
    assertRightHalfUnchanged(output, await decode(first));
  });

  it('images.edit: files without a type arrive as application/octet-stream and still work', async () => {
    const input = await solidPng(96, 64, [0, 0, 255, 255]);
    const response = await gpt().images.edit({
      model: 'gpt-image-1',
      prompt: 'paint it',
      image: await toFile(input, 'x.png'),
      mask: await toFile(await halfMask(96, 64), 'mask.png'),
    });
    const output = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
    assertRightHalfUnchanged(output, await decode(input));
  });

  it('images.edit: size 1024x1536 from a square input', async () => {
    const response = await gpt().images.edit({
      model: 'gpt-image-1',
      prompt: 'taller',
      image: await toFile(await solidPng(64, 64), 'in.png', { type: 'image/png' }),
      size: '1024x1536',
      n: 2,
    });
    assert.equal(response.data?.length, 2);
    for (const item of response.data!) {
      const image = await decode(Buffer.from(item.b64_json!, 'base64'));
      assert.deepEqual([image.width, image.height], [1024, 1536]);
    }
  });
});

describe('AzureOpenAI without a client-level deployment', () => {
  for (const size of ['1024x1024', '1792x1024', '1024x1792'] as const) {
    it(`dall-e-3 ${size}: url + revised_prompt, and the url downloads a PNG of that size`, async () => {
      const response = await client().images.generate({
        model: 'dall-e-3',
        prompt: PROMPT,
        size,
        quality: 'hd',
        style: 'natural',
      });
      const item = response.data![0]!;
      assert.equal(typeof item.revised_prompt, 'string');
      assert.ok(item.url?.startsWith(`${base}/`), `absolute url on this server: ${item.url}`);
      const file = await download(item.url!);
      assert.equal(file.status, 200);
      assert.equal(file.type, 'image/png');
      assert.deepEqual(file.bytes.subarray(0, 4), PNG_MAGIC);
      const image = await decode(file.bytes);
      assert.equal(`${image.width}x${image.height}`, size);
    });
  }

  it('dall-e-3 response_format b64_json', async () => {
    const response = await client().images.generate({ model: 'dall-e-3', prompt: PROMPT, response_format: 'b64_json' });
    const image = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
    assert.deepEqual([image.format, image.width, image.height], ['png', 1024, 1024]);
  });

  it('images.edit({ model }) reaches /openai/images/edits (openai-node 4.104–7.4 routing bug) and succeeds', async () => {
    const seen: string[] = [];
    const response = await client({
      fetch: async (url, init) => {
        // The SDK first probes FormData support with a `data:` URL; only count real requests.
        if (String(url).startsWith('http')) seen.push(String(url));
        return fetch(url, init);
      },
    }).images.edit({
      model: 'gpt-image-1',
      prompt: 'edit',
      image: await toFile(await solidPng(64, 64), 'in.png', { type: 'image/png' }),
    });
    assert.equal(seen.length, 1, seen.join(' '));
    assert.equal(new URL(seen[0]!).pathname, '/openai/images/edits');
    const image = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
    assert.deepEqual([image.width, image.height], [64, 64]);
  });

  it('apiVersion 2024-02-01: dall-e-3 works, gpt-image-1 is a BadRequestError', async () => {
    const old = client({ apiVersion: '2024-02-01' });
    const response = await old.images.generate({ model: 'dall-e-3', prompt: PROMPT });
    assert.ok(response.data![0]!.url);
    await assert.rejects(old.images.generate({ model: 'gpt-image-1', prompt: PROMPT }), (error: unknown) => {
      assert.ok(error instanceof BadRequestError, String(error));
      assert.equal(error.status, 400);
      assert.equal(error.code, 'BadRequest');
      return true;
    });
  });
});

describe('client construction variants', () => {
  it("endpoint with the portal's trailing slash", async () => {
    const response = await client({ endpoint: `${base}/` }).images.generate({ model: 'dall-e-3', prompt: PROMPT });
    assert.ok(response.data![0]!.url);
  });

  it('azureADTokenProvider: the token arrives as Authorization: Bearer and is checked like a key', async () => {
    const withToken = (token: string) =>
      new AzureOpenAI({
        endpoint: base,
        azureADTokenProvider: async () => token,
        apiVersion: API_VERSION,
        maxRetries: 0,
      });
    const response = await withToken(TEST_KEY).images.generate({ model: 'dall-e-3', prompt: PROMPT });
    assert.ok(response.data![0]!.url);
    await assert.rejects(
      withToken('not-a-known-key').images.generate({ model: 'dall-e-3', prompt: PROMPT }),
      AuthenticationError,
    );
  });
});

describe('errors surface as SDK exceptions', () => {
  it('a wrong key → AuthenticationError (401, code "401") with a request id', async () => {
    await assert.rejects(
      client({ apiKey: 'not-the-key-at-all' }).images.generate({ model: 'dall-e-3', prompt: PROMPT }),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.equal(error.status, 401);
        assert.equal(error.code, '401');
        assert.match(error.requestID ?? '', UUID_RE);
        return true;
      },
    );
  });

  it('an unknown deployment → NotFoundError DeploymentNotFound', async () => {
    await assert.rejects(
      client({ deployment: 'no-such-deployment' }).images.generate({ model: 'x', prompt: PROMPT }),
      (error: unknown) => {
        assert.ok(error instanceof NotFoundError, String(error));
        assert.equal(error.code, 'DeploymentNotFound');
        assert.match(error.requestID ?? '', UUID_RE);
        return true;
      },
    );
  });

  it('dall-e-3 n=2 → BadRequestError with param "n"', async () => {
    await assert.rejects(client().images.generate({ model: 'dall-e-3', prompt: PROMPT, n: 2 }), (error: unknown) => {
      assert.ok(error instanceof BadRequestError, String(error));
      assert.equal(error.param, 'n');
      assert.match(error.requestID ?? '', UUID_RE);
      return true;
    });
  });
});

describe('streaming', () => {
  it('images.generate stream: 2 partial images then completed', async () => {
    const stream = await client({ deployment: 'gpt-image-1' }).images.generate({
      model: 'gpt-image-1',
      prompt: PROMPT,
      size: '1024x1024',
      stream: true,
      partial_images: 2,
    });
    const events: { type: string; b64_json: string; partial_image_index?: number }[] = [];
    for await (const event of stream) events.push(event);
    assert.deepEqual(
      events.map((e) => e.type),
      ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed'],
    );
    assert.deepEqual(
      events.slice(0, 2).map((e) => e.partial_image_index),
      [0, 1],
    );
    for (const event of events) {
      const image = await decode(Buffer.from(event.b64_json, 'base64'));
      assert.deepEqual([image.width, image.height], [1024, 1024]);
    }
    const completed = events[2] as { usage?: { total_tokens: number } };
    assert.ok(completed.usage && completed.usage.total_tokens > 0);
  });

  it('images.edit stream (no client deployment): 1 partial image then completed', async () => {
    const stream = await client().images.edit({
      model: 'gpt-image-1',
      prompt: 'edit',
      image: await toFile(await solidPng(128, 128), 'in.png', { type: 'image/png' }),
      stream: true,
      partial_images: 1,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.deepEqual(types, ['image_edit.partial_image', 'image_edit.completed']);
  });
});

describe('streaming with a slow engine', () => {
  it('bug: SSE headers were held back until the first event — the stream opens while the job still runs', async () => {
    const engine = new GatedEngine();
    const slow = await startListening({ engine });
    let cleanup = () => {};
    try {
      const sdk = new AzureOpenAI({
        endpoint: slow.base,
        apiKey: TEST_KEY,
        apiVersion: API_VERSION,
        deployment: 'gpt-image-1',
        maxRetries: 0,
      });
      let opened = false;
      const hangUp = new AbortController();
      cleanup = () => hangUp.abort();
      const streaming = sdk.images.generate(
        { model: 'gpt-image-1', prompt: PROMPT, stream: true, partial_images: 0 },
        { signal: hangUp.signal },
      );
      void streaming.then(
        () => (opened = true),
        () => {},
      );
      await waitFor('the job to reach the engine', () => (engine.runs >= 1 ? true : undefined));
      await waitFor('the stream to open while the engine is still blocked', () => (opened ? true : undefined), 5_000);
      engine.release();
      const types: string[] = [];
      for await (const event of await streaming) types.push(event.type);
      assert.deepEqual(types, ['image_generation.completed']);
    } finally {
      cleanup();
      engine.release();
      await slow.app.dispose();
    }
  });
});

describe('queue admission', () => {
  it('a request aborted by the client (AbortSignal) cancels its job and frees the slot', async () => {
    const engine = new GatedEngine();
    const busy = await startListening({
      engine,
      config: { queue: { concurrency: 1, maxWaiting: 0, jobTimeoutSeconds: 600 } },
    });
    try {
      const sdk = new AzureOpenAI({ endpoint: busy.base, apiKey: TEST_KEY, apiVersion: API_VERSION, maxRetries: 0 });
      const hangUp = new AbortController();
      const first = sdk.images.generate({ model: 'dall-e-3', prompt: 'first' }, { signal: hangUp.signal });
      await waitFor('the first job to reach the engine', () => (engine.runs >= 1 ? true : undefined));
      hangUp.abort();
      await assert.rejects(first, APIUserAbortError);
      await waitFor('the slot to be free', async () =>
        (await busy.app.services.queue.counts('dall-e-3')).active === 0 ? true : undefined,
      );
      const second = sdk.images.generate({ model: 'dall-e-3', prompt: 'second' });
      await waitFor('the second job to reach the engine', () => (engine.runs >= 2 ? true : undefined));
      engine.release();
      assert.ok((await second).data![0]!.url);
    } finally {
      engine.release();
      await busy.app.dispose();
    }
  });

  it('maxRetries 0 → RateLimitError; maxRetries 2 → the retry (honouring retry-after) succeeds', async () => {
    const engine = new GatedEngine();
    const busy = await startListening({
      engine,
      config: { queue: { concurrency: 1, maxWaiting: 0, jobTimeoutSeconds: 600 } },
    });
    try {
      const make = (maxRetries: number) =>
        new AzureOpenAI({
          endpoint: busy.base,
          apiKey: TEST_KEY,
          apiVersion: API_VERSION,
          deployment: 'dall-e-3',
          maxRetries,
        });
      const first = make(0).images.generate({ model: 'dall-e-3', prompt: 'first' });
      await waitFor('the first job to reach the engine', () => (engine.runs >= 1 ? true : undefined));

      await assert.rejects(make(0).images.generate({ model: 'dall-e-3', prompt: 'second' }), (error: unknown) => {
        assert.ok(error instanceof RateLimitError, String(error));
        assert.equal(error.status, 429);
        assert.equal(error.code, '429');
        const retryAfter = Number(error.headers?.get('retry-after'));
        assert.ok(retryAfter >= 1 && retryAfter < 60, `retry-after ${retryAfter}`);
        return true;
      });

      const attempts: string[] = [];
      const retrying = new AzureOpenAI({
        endpoint: busy.base,
        apiKey: TEST_KEY,
        apiVersion: API_VERSION,
        deployment: 'dall-e-3',
        maxRetries: 2,
        fetch: async (url, init) => {
          const response = await fetch(url, init);
          attempts.push(`${new Headers(init?.headers).get('x-stainless-retry-count')}:${response.status}`);
          return response;
        },
      });
      const second = retrying.images.generate({ model: 'dall-e-3', prompt: 'second' });
      await waitFor('the first attempt to be refused', () => (attempts.length >= 1 ? true : undefined));
      setTimeout(() => engine.release(), 1000);
      const [a, b] = await Promise.all([first, second]);
      assert.ok(a.data![0]!.url);
      assert.ok(b.data![0]!.url);
      assert.equal(attempts[0], '0:429');
      assert.equal(attempts.at(-1)?.endsWith(':200'), true, attempts.join(', '));
    } finally {
      engine.release();
      await busy.app.dispose();
    }
  });
});
