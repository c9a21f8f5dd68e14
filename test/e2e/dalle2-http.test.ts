// Raw HTTP, as the Azure docs and curl do it: the DALL-E 2 submit/poll/delete flow, multipart
// edits built with fetch's own FormData/Blob, and header spellings from older scripts.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { decode, halfMask, solidPng, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { download, PNG_MAGIC, startListening, UUID_RE } from './helpers.ts';

const OPS_VERSION = '2023-06-01-preview';
const EDIT_URL = '/openai/deployments/gpt-image-1/images/edits?api-version=2025-04-01-preview';

let app: TestApp;
let base: string;

before(async () => {
  ({ app, base } = await startListening());
});
after(async () => {
  await app?.dispose();
});

interface Operation {
  id: string;
  status: string;
  created: number;
  expires: number;
  result?: { created: number; data: { url?: string; error?: unknown }[] };
  error?: { code: string; message: string };
}

/** Poll an operation-location until the operation ends, sleeping `retry-after` seconds (default 1) between polls. */
async function pollUntilDone(
  location: string,
  deadlineMs = 20_000,
): Promise<{ operation: Operation; polls: number; sawRetryAfter: boolean }> {
  const deadline = Date.now() + deadlineMs;
  let polls = 0;
  let sawRetryAfter = false;
  for (;;) {
    const response = await fetch(location, { headers: { 'api-key': TEST_KEY } });
    assert.equal(response.status, 200);
    polls++;
    const operation = (await response.json()) as Operation;
    if (!['notRunning', 'running'].includes(operation.status)) return { operation, polls, sawRetryAfter };
    const retryAfter = response.headers.get('retry-after');
    if (retryAfter !== null) sawRetryAfter = true;
    if (Date.now() > deadline) throw new Error(`operation still ${operation.status} after ${deadlineMs} ms`);
    await sleep(1000 * Number(retryAfter ?? 1));
  }
}

describe('DALL-E 2 asynchronous flow, exactly as the Azure how-to shows it', () => {
  it('submit → 202 + absolute operation-location → poll → succeeded → 3 PNGs of 512x512 → DELETE 204 → deleted', async () => {
    const submitted = await fetch(`${base}/openai/images/generations:submit?api-version=${OPS_VERSION}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'api-key': TEST_KEY },
      body: JSON.stringify({
        prompt: 'a multi-colored umbrella on the beach, disposable camera',
        size: '512x512',
        n: 3,
      }),
    });
    assert.equal(submitted.status, 202);
    const accepted = (await submitted.json()) as { id: string; status: string };
    assert.match(accepted.id, UUID_RE);
    assert.equal(accepted.status, 'notRunning');
    const location = submitted.headers.get('operation-location');
    assert.equal(location, `${base}/openai/operations/images/${accepted.id}?api-version=${OPS_VERSION}`);

    const { operation } = await pollUntilDone(location!);
    assert.equal(operation.status, 'succeeded', JSON.stringify(operation));
    assert.equal(operation.id, accepted.id);
    assert.ok(operation.expires > operation.created);
    assert.equal(operation.result?.data.length, 3);
    const urls = operation.result!.data.map((item) => item.url!);
    assert.equal(new Set(urls).size, 3);
    for (const url of urls) {
      const file = await download(url);
      assert.equal(file.status, 200);
      assert.deepEqual(file.bytes.subarray(0, 4), PNG_MAGIC);
      const image = await decode(file.bytes);
      assert.deepEqual([image.format, image.width, image.height], ['png', 512, 512]);
    }

    const deleted = await fetch(location!, { method: 'DELETE', headers: { 'api-key': TEST_KEY } });
    assert.equal(deleted.status, 204);
    assert.equal((await deleted.arrayBuffer()).byteLength, 0);
    const after = await fetch(location!, { headers: { 'api-key': TEST_KEY } });
    assert.equal(after.status, 200);
    assert.equal(((await after.json()) as Operation).status, 'deleted');
    // The images went with the operation.
    assert.equal((await download(urls[0]!)).status, 404);
  });

  it('four concurrent submits (2023-08-01-preview): each 202 carries retry-after and each operation succeeds', async () => {
    const locations = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const response = await fetch(`${base}/openai/images/generations:submit?api-version=2023-08-01-preview`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'api-key': TEST_KEY },
          body: JSON.stringify({ prompt: 'a fox', n: 2, size: '1024x1024' }),
        });
        assert.equal(response.status, 202);
        assert.equal(response.headers.get('retry-after'), '1');
        return response.headers.get('operation-location')!;
      }),
    );
    for (const location of locations) {
      const { operation } = await pollUntilDone(location);
      assert.equal(operation.status, 'succeeded');
    }
  });
});

/** A fetch Blob holding a PNG. */
const pngBlob = (bytes: Buffer) => new Blob([new Uint8Array(bytes)], { type: 'image/png' });

describe('multipart edits with fetch FormData', () => {
  it('image[] twice plus a mask → the unmasked half of the first image comes back unchanged', async () => {
    const first = await solidPng(128, 96, [220, 30, 30, 255]);
    const form = new FormData();
    form.append('prompt', 'a sunlit lounge area with a pool');
    form.append('n', '1');
    form.append('image[]', pngBlob(first), 'first.png');
    form.append('image[]', pngBlob(await solidPng(128, 96, [0, 0, 0, 255])), 'second.png');
    form.append('mask', pngBlob(await halfMask(128, 96)), 'mask.png');
    const response = await fetch(base + EDIT_URL, { method: 'POST', headers: { 'api-key': TEST_KEY }, body: form });
    assert.equal(response.status, 200, await response.clone().text());
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await response.json()) as { data: { b64_json: string }[]; usage: unknown };
    assert.ok(body.usage);
    const output = await decode(Buffer.from(body.data[0]!.b64_json, 'base64'));
    const input = await decode(first);
    assert.deepEqual([output.width, output.height], [128, 96]);
    for (let y = 0; y < 96; y++) {
      for (let x = 64; x < 128; x++) {
        const i = (y * 128 + x) * 4;
        assert.deepEqual([...output.data.subarray(i, i + 4)], [...input.data.subarray(i, i + 4)], `pixel ${x},${y}`);
      }
    }
  });

  it('generate with gpt-image-1, then edit what came back', async () => {
    const generated = await fetch(
      `${base}/openai/deployments/gpt-image-1/images/generations?api-version=2025-04-01-preview`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'api-key': TEST_KEY },
        body: JSON.stringify({
          prompt: 'girl falling asleep',
          n: 1,
          size: '1024x1024',
          quality: 'medium',
          output_format: 'png',
        }),
      },
    );
    assert.equal(generated.status, 200);
    const png = Buffer.from(((await generated.json()) as { data: { b64_json: string }[] }).data[0]!.b64_json, 'base64');

    const form = new FormData();
    form.append('prompt', 'girl falling asleep, at night');
    form.append('size', '1024x1024');
    form.append('quality', 'medium');
    form.append('image', pngBlob(png), 'generated_image_1.png');
    form.append('mask', pngBlob(await halfMask(1024, 1024)), 'mask.png');
    const edited = await fetch(base + EDIT_URL, { method: 'POST', headers: { 'api-key': TEST_KEY }, body: form });
    assert.equal(edited.status, 200, await edited.clone().text());
    const output = await decode(
      Buffer.from(((await edited.json()) as { data: { b64_json: string }[] }).data[0]!.b64_json, 'base64'),
    );
    const input = await decode(png);
    assert.deepEqual([output.width, output.height], [1024, 1024]);
    const row = 500 * 1024 * 4;
    assert.deepEqual(
      output.data.subarray(row + 600 * 4, row + 1024 * 4),
      input.data.subarray(row + 600 * 4, row + 1024 * 4),
    );
    assert.notDeepEqual(output.data, input.data, 'the masked half was edited');
  });
});

/** A request through node:http, which sends header names exactly as written (fetch lowercases them). */
function rawPost(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('header spellings that scripts use', () => {
  const generations = () => `${base}/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`;
  const body = JSON.stringify({ prompt: 'a lighthouse', n: 1, size: '1024x1024' });

  for (const name of ['Api-Key', 'API-KEY', 'Ocp-Apim-Subscription-Key']) {
    it(`${name} (sent verbatim by node:http and through fetch)`, async () => {
      const raw = await rawPost(generations(), { [name]: TEST_KEY, 'Content-Type': 'application/json' }, body);
      assert.equal(raw.status, 200, raw.body);
      assert.ok((JSON.parse(raw.body) as { data: { url: string }[] }).data[0]!.url);
      const viaFetch = await fetch(generations(), {
        method: 'POST',
        headers: { [name]: TEST_KEY, 'Content-Type': 'application/json' },
        body,
      });
      assert.equal(viaFetch.status, 200);
    });
  }

  it('no key at all → 401 with code "401" and Azure request ids', async () => {
    const response = await fetch(generations(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, '401');
    assert.match(response.headers.get('apim-request-id') ?? '', UUID_RE);
    assert.equal(response.headers.get('x-request-id'), response.headers.get('apim-request-id'));
  });
});
