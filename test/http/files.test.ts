// Signed image links (GET /files/images/{name}?se=…&sig=…): the signature is the credential, a
// tampered or expired link serves nothing (docs/azure-api.md, "Responses": Azure's are 24-hour blob SAS URLs).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { type BlobStore, StorageUnavailableError } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import type { ImageLinks } from '../../src/storage/image-links.ts';
import { decode, startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  generationsUrl,
  operationUrl,
  pathOf,
  pollOperation,
  postJson,
  type Response,
  send,
  submit,
} from './helpers.ts';

let app: TestApp;
/** Path and query of a fresh dall-e-3 image link. */
let link: string;
before(async () => {
  app = await startTestApp();
  link = await newLink(app);
});
after(() => app.dispose());

async function newLink(target: TestApp): Promise<string> {
  const res = await postJson(target, generationsUrl('dall-e-3'), { prompt: 'a green door' });
  assert.equal(res.statusCode, 200, res.body);
  return pathOf(res.json().data[0].url);
}

const get = (url: string, target = app) => target.server.inject({ method: 'GET', url });

function assertRefused(res: Response) {
  assertError(res, 403, 'AuthenticationFailed');
  assert.doesNotMatch(res.body, /PNG/);
}

function parts(url: string) {
  const parsed = new URL(url, 'http://x');
  return { path: parsed.pathname, se: parsed.searchParams.get('se')!, sig: parsed.searchParams.get('sig')! };
}

describe('a valid link', () => {
  test('GET of the returned url path answers 200 image/png with the image bytes', async () => {
    const res = await get(link);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/png');
    const image = await decode(res.rawPayload);
    assert.deepEqual([image.width, image.height, image.format], [1024, 1024, 'png']);
  });

  test('the link is absolute, under /files/images/, with se and sig, and se is 24 hours ahead', async () => {
    const { path, se, sig } = parts(link);
    assert.match(path, /^\/files\/images\/[0-9a-f-]{36}\.png$/);
    assert.match(sig, /^[A-Za-z0-9_-]+$/);
    const ahead = Number(se) - Date.now() / 1000;
    assert.ok(ahead > 86400 - 600 && ahead <= 86400, `se is ${ahead} s ahead`);
  });

  test('the image answer says inline with its file name and a private cache lifetime', async () => {
    const res = await get(link);
    assert.equal(res.headers['content-disposition'], `inline; filename="${parts(link).path.split('/').pop()}"`);
    assert.match(String(res.headers['cache-control']), /^private, max-age=\d+$/);
  });

  test('no key is needed, and a wrong key does not matter', async () => {
    const res = await app.server.inject({ method: 'GET', url: link, headers: { 'api-key': 'wrong-wrong-wrong' } });
    assert.equal(res.statusCode, 200);
  });
});

describe('tampered links answer 403 and no image', () => {
  test('a tampered sig answers 403', async () => {
    const { path, se, sig } = parts(link);
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    assertRefused(await get(`${path}?se=${se}&sig=${flipped}`));
  });

  test('a sig with an extra character answers 403', async () => {
    const { path, se, sig } = parts(link);
    assertRefused(await get(`${path}?se=${se}&sig=${sig}A`));
  });

  test('a later se (extended expiry) answers 403', async () => {
    const { path, se, sig } = parts(link);
    assertRefused(await get(`${path}?se=${Number(se) + 3600}&sig=${sig}`));
  });

  test('an se that is not a number answers 403', async () => {
    const { path, sig } = parts(link);
    assertRefused(await get(`${path}?se=soon&sig=${sig}`));
  });

  test('the signature of one image does not open another path', async () => {
    const other = parts(await newLink(app));
    const { se, sig } = parts(link);
    assertRefused(await get(`${other.path}?se=${se}&sig=${sig}`));
  });

  test('a tampered path answers 403', async () => {
    const { path, se, sig } = parts(link);
    assertRefused(await get(`${path.replace(/\.png$/, '.webp')}?se=${se}&sig=${sig}`));
  });

  test('a link without a query answers 403', async () => {
    assertRefused(await get(parts(link).path));
  });

  test('a link with only se, or only sig, answers 403', async () => {
    const { path, se, sig } = parts(link);
    assertRefused(await get(`${path}?se=${se}`));
    assertRefused(await get(`${path}?sig=${sig}`));
  });

  test('a path outside images/ with a valid signature for it still serves nothing', async () => {
    const path = '/files/images/../easel.db';
    const res = await get(`${path}?${app.services.signer.sign(path, Math.floor(Date.now() / 1000) + 60)}`);
    assert.notEqual(res.statusCode, 200);
    assert.doesNotMatch(res.body, /SQLite/);
  });
});

describe('expired and deleted images', () => {
  test('a link signed with a past expiry answers 403', async () => {
    const { path } = parts(link);
    const past = Math.floor(Date.now() / 1000) - 10;
    assertRefused(await get(`${path}?${app.services.signer.sign(path, past)}`));
  });

  test('a link expires after EASEL_IMAGE_URL_TTL_SECONDS', async () => {
    const shortLived = await startTestApp({ env: { EASEL_IMAGE_URL_TTL_SECONDS: '1' } });
    try {
      const url = await newLink(shortLived);
      const { se } = parts(url);
      // Wait until the expiry second has passed, whatever the clock's phase.
      while (Date.now() / 1000 < Number(se) + 0.05) await new Promise((r) => setTimeout(r, 100));
      assertRefused(await get(url, shortLived));
    } finally {
      await shortLived.dispose();
    }
  });

  test('an expired link and a tampered one are told apart by their message; neither names a param or type', async () => {
    const { path, se, sig } = parts(link);
    const expired = assertError(
      await get(`${path}?${app.services.signer.sign(path, Math.floor(Date.now() / 1000) - 10)}`),
      403,
      'AuthenticationFailed',
      null,
    );
    const tampered = assertError(
      await get(`${path}?se=${se}&sig=${sig.slice(0, -1)}`),
      403,
      'AuthenticationFailed',
      null,
    );
    assert.equal(expired.type, null);
    assert.equal(tampered.type, null);
    assert.match(String(expired.message), /expired/);
    assert.doesNotMatch(String(tampered.message), /expired/);
  });

  test('a correctly signed link to an image that does not exist answers 404 BlobNotFound', async () => {
    const path = '/files/images/00000000-0000-4000-8000-000000000000.png';
    const res = await get(`${path}?${app.services.signer.sign(path, Math.floor(Date.now() / 1000) + 60)}`);
    assert.equal(assertError(res, 404, 'BlobNotFound', null).type, null);
  });

  test('after a DALL-E 2 operation is deleted its image links answer 404', async () => {
    const id = await submit(app, { prompt: 'a kite', size: '256x256' });
    const { body } = await pollOperation(app, id);
    const url = pathOf(body.result.data[0].url);
    assert.equal((await get(url)).statusCode, 200);
    assert.equal((await send(app, { method: 'DELETE', url: operationUrl(id) })).statusCode, 204);
    assertError(await get(url), 404, 'BlobNotFound');
  });
});

describe('streaming and other stores', () => {
  test('the answer carries the content-length of the stored bytes', async () => {
    const res = await get(link);
    assert.equal(res.headers['content-length'], String(res.rawPayload.length));
    const key = parts(link).path.slice('/files/'.length);
    assert.equal(res.rawPayload.length, (await app.services.blobs.get(key))!.length);
  });

  test('a store that cannot be reached answers 503 ServiceUnavailable with retry-after, and nothing else breaks', async () => {
    const unreachable: BlobStore = {
      put: () => Promise.reject(new StorageUnavailableError('Could not write to the bucket at http://10.0.0.9')),
      get: () => Promise.reject(new StorageUnavailableError('Could not read the bucket at http://10.0.0.9')),
      open: () => Promise.reject(new StorageUnavailableError('Could not read the bucket at http://10.0.0.9')),
      delete: () => Promise.reject(new StorageUnavailableError('Could not delete in the bucket at http://10.0.0.9')),
      list: () => Promise.reject(new StorageUnavailableError('Could not list the bucket at http://10.0.0.9')),
    };
    const down = await startTestApp({ blobs: unreachable });
    try {
      const generated = await postJson(down, generationsUrl('dall-e-3'), { prompt: 'a green door' });
      assertError(generated, 503, 'ServiceUnavailable');
      assert.equal(generated.headers['retry-after'], '10');
      assert.doesNotMatch(generated.body, /10\.0\.0\.9|bucket/);

      // A record whose bytes are in the unreachable store.
      const now = Math.floor(Date.now() / 1000);
      const key = 'images/00000000-0000-4000-8000-0000000000aa.png';
      await down.services.store.putImage({
        id: '00000000-0000-4000-8000-0000000000aa',
        key,
        contentType: 'image/png',
        width: 1,
        height: 1,
        deployment: 'dall-e-3',
        operationId: null,
        created: now,
        expires: now + 60,
      });
      const path = `/files/${key}`;
      const res = await get(`${path}?${down.services.signer.sign(path, now + 60)}`, down);
      assertError(res, 503, 'ServiceUnavailable');
      assert.doesNotMatch(res.body, /10\.0\.0\.9|bucket/);
      assert.equal((await down.server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    } finally {
      await down.dispose();
    }
  });

  test('other image links (presigned bucket URLs) appear in answers and operations, expiring with the image, and the playground may show them', async () => {
    const links: ImageLinks = {
      origin: 'https://bucket.example.test',
      urlOf: async (_base, image) => `https://bucket.example.test/${image.key}?until=${image.expires}`,
    };
    const presigned = await startTestApp({ imageLinks: links });
    try {
      const res = await postJson(presigned, generationsUrl('dall-e-3'), { prompt: 'a green door' });
      const url = new URL(res.json().data[0].url as string);
      assert.equal(url.origin, 'https://bucket.example.test');
      const id = url.pathname.match(/^\/images\/([0-9a-f-]{36})\.png$/)![1]!;
      const record = await presigned.services.store.getImage(id);
      assert.equal(url.searchParams.get('until'), String(record!.expires));

      const operation = await submit(presigned, { prompt: 'a kite', size: '256x256' });
      const { body } = await pollOperation(presigned, operation);
      assert.match(
        body.result.data[0].url as string,
        /^https:\/\/bucket\.example\.test\/images\/[0-9a-f-]{36}\.png\?until=\d+$/,
      );

      // The playground may show them.
      const page = await presigned.server.inject({ method: 'GET', url: '/' });
      assert.match(
        String(page.headers['content-security-policy']),
        /img-src 'self' data: blob: https:\/\/bucket\.example\.test;/,
      );
    } finally {
      await presigned.dispose();
    }
  });

  test('a client that goes away mid-download ends the read of the stored bytes', async () => {
    const streams: Readable[] = [];
    const root = await mkdtemp(join(tmpdir(), 'easel-files-'));
    const fs = new FsBlobStore(root);
    const tracking: BlobStore = {
      put: (k, b) => fs.put(k, b),
      get: (k) => fs.get(k),
      delete: (k) => fs.delete(k),
      list: (p, o) => fs.list(p, o),
      open: async (k) => {
        const opened = await fs.open(k);
        if (opened) streams.push(opened.stream);
        return opened;
      },
    };
    const served = await startTestApp({ blobs: tracking });
    try {
      const now = Math.floor(Date.now() / 1000);
      const key = 'images/00000000-0000-4000-8000-0000000000bb.png';
      await fs.put(key, Buffer.alloc(64 * 1024 * 1024, 1));
      await served.services.store.putImage({
        id: '00000000-0000-4000-8000-0000000000bb',
        key,
        contentType: 'image/png',
        width: 1,
        height: 1,
        deployment: 'dall-e-3',
        operationId: null,
        created: now,
        expires: now + 60,
      });
      const base = (await served.server.listen({ host: '127.0.0.1', port: 0 })).replace(/\/+$/, '');
      const url = await served.services.imageLinks.urlOf(base, { key, expires: now + 60 });
      const length = await new Promise<string | undefined>((resolve, reject) => {
        const request = httpGet(url, (res) => {
          res.once('data', () => {
            resolve(res.headers['content-length']);
            request.destroy();
          });
        });
        request.on('error', (error) => {
          if (!request.destroyed) reject(error);
        });
      });
      assert.equal(length, String(64 * 1024 * 1024));
      assert.equal(streams.length, 1);
      const stream = streams[0]!;
      await new Promise((resolve) => (stream.closed ? resolve(null) : stream.once('close', resolve)));
      assert.ok(stream.destroyed);
    } finally {
      await served.dispose();
      await rm(root, { recursive: true, force: true });
    }
  });
});
