// The S3 adapter against a real radosgw started by scripts/services/s3.sh: the BlobStore contract
// (a fresh bucket per test), bucket creation, presigned URLs, refused credentials, an endpoint that
// is closed, silent or lost mid-use, and the HTTP answers and links that rest on it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, get as httpGet, request as httpRequest } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';

import { HeadBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';

import { StorageUnavailableError } from '../../src/storage/blob-store.ts';
import { PresignedImageLinks } from '../../src/storage/image-links.ts';
import { openS3BlobStore } from '../../src/storage/index.ts';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/storage/s3-blob-store.ts';
import { directPut, S3ResponseError } from '../../src/storage/s3-direct-put.ts';
import { decode, startTestApp } from '../helpers/app.ts';
import { reportMissingService, s3Connection, startService } from '../helpers/services.ts';
import { assertError, generationsUrl, pathOf, postJson } from '../http/helpers.ts';
import { blobStoreContract } from './blob-store.contract.ts';

const started = startService('s3');
if (!started.ok) {
  reportMissingService('S3 blob store', started.missing);
} else {
  const server = started.service;
  after(() => server.stop());
  const connection = s3Connection(server);
  let buckets = 0;
  const freshBucket = () => `easel-test-${process.pid}-${buckets++}`;
  const open = (options: Partial<S3BlobStoreOptions> = {}) =>
    S3BlobStore.open({ ...connection, bucket: freshBucket(), ...options });
  const nowUnix = () => Math.floor(Date.now() / 1000);

  blobStoreContract('s3', async (t) => {
    const store = await open();
    t.after(() => store.close());
    return store;
  });

  describe('s3: opening', () => {
    test('a missing bucket is created; opening it again, or from two nodes at once, finds it', async () => {
      const bucket = freshBucket();
      const raw = new S3Client(connection);
      try {
        await assert.rejects(raw.send(new HeadBucketCommand({ Bucket: bucket })));
        const [a, b] = await Promise.all([
          S3BlobStore.open({ ...connection, bucket }),
          S3BlobStore.open({ ...connection, bucket }),
        ]);
        await raw.send(new HeadBucketCommand({ Bucket: bucket }));
        await a.put('images/shared.png', Buffer.from('one bucket'));
        assert.deepEqual(await b.get('images/shared.png'), Buffer.from('one bucket'));
        // Through the lazy loader that other folders use (storage/index.ts).
        const again = await openS3BlobStore({ ...connection, bucket });
        assert.deepEqual(await again.get('images/shared.png'), Buffer.from('one bucket'));
        for (const store of [a, b, again]) store.close();
      } finally {
        raw.destroy();
      }
    });

    test('wrong credentials are refused at open, with a message naming the endpoint, bucket and credentials', async () => {
      const bucket = freshBucket();
      const error = await S3BlobStore.open({
        ...connection,
        bucket,
        credentials: { accessKeyId: connection.credentials.accessKeyId, secretAccessKey: 'not-the-secret' },
      }).catch((e: unknown) => e);
      assert.ok(error instanceof StorageUnavailableError, String(error));
      assert.match(error.message, new RegExp(`"${bucket}"`));
      assert.ok(error.message.includes(connection.endpoint), error.message);
      assert.match(error.message, /credentials were refused \(HTTP 403/);
      assert.match(error.message, /AWS_ACCESS_KEY_ID/);
    });

    test('an unknown access key is refused the same way', async () => {
      const error = await open({
        credentials: { accessKeyId: 'NOSUCHACCESSKEY00000', secretAccessKey: 'whatever-whatever' },
      }).catch((e: unknown) => e);
      assert.ok(error instanceof StorageUnavailableError, String(error));
      assert.match(error.message, /credentials were refused/);
    });

    test('a closed port fails at once with a message naming the endpoint and bucket', { timeout: 30_000 }, async () => {
      const endpoint = `http://127.0.0.1:${await closedPort()}`;
      const error = await open({ endpoint }).catch((e: unknown) => e);
      assert.ok(error instanceof StorageUnavailableError, String(error));
      assert.ok(error.message.includes(endpoint), error.message);
      assert.match(error.message, /bucket "easel-test-/);
      assert.match(error.message, /unreachable \(ECONNREFUSED\)/);
    });

    test('an endpoint that accepts connections but never answers fails after the request timeout', async () => {
      const silent = await listen(createServer(() => undefined));
      try {
        const endpoint = `http://127.0.0.1:${port(silent.server)}`;
        const error = await open({ endpoint, requestTimeoutMs: 300, socketTimeoutMs: 300, maxAttempts: 1 }).catch(
          (e: unknown) => e,
        );
        assert.ok(error instanceof StorageUnavailableError, String(error));
        assert.match(error.message, /no answer in time|timed out/);
      } finally {
        await silent.close();
      }
    });
  });

  describe('s3: presigned URLs', () => {
    test('a presigned URL downloads the bytes with plain fetch, typed by the key, and names the file', async (t) => {
      const store = await open();
      t.after(() => store.close());
      await store.put('images/p.png', Buffer.from('png bytes'));
      const url = await store.presignedGetUrl('images/p.png', nowUnix() + 600, { filename: 'p.png' });
      assert.ok(url.startsWith(`${connection.endpoint}/${store.bucket}/images/p.png?`), url);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.equal(res.headers.get('content-disposition'), 'inline; filename="p.png"');
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.from('png bytes'));

      for (const [key, type] of [
        ['images/p.jpg', 'image/jpeg'],
        ['images/p.webp', 'image/webp'],
        ['transient/upload', 'application/octet-stream'],
      ]) {
        await store.put(key!, Buffer.from('x'));
        const typed = await fetch(await store.presignedGetUrl(key!, nowUnix() + 600));
        assert.equal(typed.headers.get('content-type'), type, key);
      }
    });

    test('the URL expires exactly at the given second: signed now, valid for the difference', async (t) => {
      const store = await open();
      t.after(() => store.close());
      await store.put('images/e.png', Buffer.from('x'));
      const expires = nowUnix() + 86_400;
      const url = new URL(await store.presignedGetUrl('images/e.png', expires));
      const signed = Date.parse(
        url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'),
      );
      assert.equal(signed / 1000 + Number(url.searchParams.get('X-Amz-Expires')), expires);
    });

    test('a URL past its expiry, or tampered with, is refused by the bucket', async (t) => {
      // A store whose clock runs an hour behind signs URLs that expired half an hour ago.
      const behind = await open({ now: () => nowUnix() - 3600 });
      t.after(() => behind.close());
      await behind.put('images/old.png', Buffer.from('x'));
      const expired = await behind.presignedGetUrl('images/old.png', nowUnix() - 1800);
      assert.equal((await fetch(expired)).status, 403);

      const fresh = new URL(await behind.presignedGetUrl('images/old.png', nowUnix() + 3600));
      assert.equal((await fetch(fresh)).status, 200);
      fresh.searchParams.set('X-Amz-Expires', String(Number(fresh.searchParams.get('X-Amz-Expires')) + 60));
      assert.equal((await fetch(fresh)).status, 403);
    });

    test('an expiry beyond 7 days is capped at 7 days (the SigV4 limit)', async (t) => {
      const store = await open();
      t.after(() => store.close());
      const url = new URL(await store.presignedGetUrl('images/far.png', nowUnix() + 30 * 86_400));
      assert.equal(url.searchParams.get('X-Amz-Expires'), String(7 * 86_400));
    });

    test('a public endpoint other than the one the nodes use is the host of the presigned URLs', async (t) => {
      const store = await open({ publicEndpoint: 'https://images.example.test' });
      t.after(() => store.close());
      const url = await store.presignedGetUrl('images/x.png', nowUnix() + 60);
      assert.ok(url.startsWith(`https://images.example.test/${store.bucket}/images/x.png?`), url);
    });
  });

  describe('s3: a bucket lost after start', () => {
    test('every operation rejects with StorageUnavailableError naming the endpoint, none hangs', async (t) => {
      const proxy = await tcpProxy(Number(new URL(connection.endpoint).port));
      const endpoint = `http://127.0.0.1:${proxy.port}`;
      const store = await open({ endpoint, maxAttempts: 1 });
      t.after(() => store.close());
      await store.put('images/a.png', Buffer.from('before'));
      assert.deepEqual(await store.get('images/a.png'), Buffer.from('before'));
      await proxy.close();

      const calls: [string, () => Promise<unknown>][] = [
        ['put', () => store.put('images/b.png', Buffer.from('x'))],
        ['get', () => store.get('images/a.png')],
        ['open', () => store.open('images/a.png')],
        ['delete', () => store.delete('images/a.png')],
        ['list', () => store.list('images/')],
      ];
      for (const [name, call] of calls) {
        const error = await call().catch((e: unknown) => e);
        assert.ok(error instanceof StorageUnavailableError, `${name}: ${String(error)}`);
        assert.ok(error.message.includes(endpoint), error.message);
      }
    });

    test('the file route answers 503 ServiceUnavailable in the envelope, and the server stays up', async (t) => {
      const proxy = await tcpProxy(Number(new URL(connection.endpoint).port));
      const store = await open({ endpoint: `http://127.0.0.1:${proxy.port}`, maxAttempts: 1 });
      const app = await startTestApp({ blobs: store });
      t.after(async () => {
        await app.dispose();
        store.close();
      });
      const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a red boat' });
      assert.equal(res.statusCode, 200, res.body);
      const link = pathOf(res.json().data[0].url);
      assert.equal((await app.server.inject({ method: 'GET', url: link })).statusCode, 200);

      await proxy.close();
      const lost = await app.server.inject({ method: 'GET', url: link });
      const error = assertError(lost, 503, 'ServiceUnavailable');
      assert.doesNotMatch(String(error.message), /127\.0\.0\.1|ECONNREFUSED|easel-test/);
      const generation = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a blue boat' });
      assertError(generation, 503, 'ServiceUnavailable');
      assert.equal((await app.server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    });
  });

  describe('s3: uploads', () => {
    test('keys with characters a URL must encode are stored under exactly that key', async (t) => {
      const store = await open();
      t.after(() => store.close());
      const keys = [
        'transient/a b+c&d=e;f,g$h@i.png',
        "transient/ü ñ 東京 (1)!*'~.png",
        'transient/100%25 %.png',
        'transient/deep/er/still.png',
      ];
      for (const [i, key] of keys.entries()) await store.put(key, Buffer.from(`bytes ${i}`));
      for (const [i, key] of keys.entries()) assert.deepEqual(await store.get(key), Buffer.from(`bytes ${i}`), key);
      const listed = (await store.list('transient/')).entries.map((entry) => entry.key);
      assert.deepEqual(listed, [...keys].sort());
    });

    test("an object is stored with its key's content type", async (t) => {
      const store = await open();
      const raw = new S3Client(connection);
      t.after(() => (store.close(), raw.destroy()));
      const types: [string, string][] = [
        ['images/a.png', 'image/png'],
        ['images/b.jpg', 'image/jpeg'],
        ['images/c.webp', 'image/webp'],
        ['transient/d.bin', 'application/octet-stream'],
      ];
      for (const [key, type] of types) {
        await store.put(key, Buffer.from('x'));
        const head = await raw.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
        assert.equal(head.ContentType, type, key);
        assert.equal(head.ContentLength, 1);
      }
    });

    test("a transient answer (503 SlowDown) is retried by the client's strategy; with one attempt it is the error", async (t) => {
      const proxy = await faultyProxy(Number(new URL(connection.endpoint).port));
      t.after(() => proxy.close());
      const endpoint = `http://127.0.0.1:${proxy.port}`;
      const bucket = freshBucket();
      const store = await S3BlobStore.open({ ...connection, endpoint, bucket, maxAttempts: 3 });
      t.after(() => store.close());
      proxy.failNextPuts(1, 503, 'SlowDown');
      await store.put('images/retried.png', Buffer.from('after one 503'));
      assert.equal(proxy.puts, 2);
      assert.deepEqual(await store.get('images/retried.png'), Buffer.from('after one 503'));

      const once = await S3BlobStore.open({ ...connection, endpoint, bucket, maxAttempts: 1 });
      t.after(() => once.close());
      proxy.failNextPuts(1, 503, 'SlowDown');
      const error = await once.put('images/lost.png', Buffer.from('x')).catch((e: unknown) => e);
      assert.ok(error instanceof StorageUnavailableError, String(error));
      assert.match(error.message, /"images\/lost\.png" in bucket .* the server answered HTTP 503 SlowDown/);
    });

    test('a refused upload is not retried, and its message says what S3 answered', async (t) => {
      const proxy = await faultyProxy(Number(new URL(connection.endpoint).port));
      t.after(() => proxy.close());
      const store = await open({ endpoint: `http://127.0.0.1:${proxy.port}`, maxAttempts: 3 });
      t.after(() => store.close());
      proxy.failNextPuts(1, 403, 'AccessDenied');
      const error = await store.put('images/refused.png', Buffer.from('x')).catch((e: unknown) => e);
      assert.ok(error instanceof StorageUnavailableError, String(error));
      assert.match(error.message, /credentials were refused \(HTTP 403 AccessDenied\)/);
      assert.equal(proxy.puts, 1);
    });

    test("a signature the bucket refuses (a wrong secret) fails with S3's own code", async (t) => {
      const store = await open();
      t.after(() => store.close());
      const wrong = new S3Client({
        ...connection,
        credentials: { accessKeyId: connection.credentials.accessKeyId, secretAccessKey: 'not-the-secret' },
      });
      t.after(() => wrong.destroy());
      const put = await directPut(wrong, store.bucket);
      const error = await put('images/x.png', Buffer.from('x'), 'image/png').catch((e: unknown) => e);
      assert.ok(error instanceof S3ResponseError, String(error));
      assert.equal(error.name, 'SignatureDoesNotMatch');
      assert.equal(error.$metadata.httpStatusCode, 403);
      assert.equal(await store.get('images/x.png'), null);
    });
  });

  describe('s3: serving images', () => {
    test('with presigned links, answers carry bucket URLs that expire with the image', async (t) => {
      const store = await open();
      const links = await PresignedImageLinks.of(store);
      assert.equal(links.origin, connection.endpoint);
      const app = await startTestApp({ blobs: store, imageLinks: links });
      t.after(async () => {
        await app.dispose();
        store.close();
      });
      const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a lighthouse' });
      assert.equal(res.statusCode, 200, res.body);
      const url = new URL(res.json().data[0].url as string);
      assert.equal(url.origin, connection.endpoint);
      assert.match(url.pathname, new RegExp(`^/${store.bucket}/images/[0-9a-f-]{36}\\.png$`));
      const id = url.pathname
        .split('/')
        .pop()!
        .replace(/\.png$/, '');
      const record = await app.services.store.getImage(id);
      assert.ok(record);
      assert.equal(record.expires - record.created, 86_400);
      const signed = Date.parse(
        url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'),
      );
      assert.equal(signed / 1000 + Number(url.searchParams.get('X-Amz-Expires')), record.expires);

      const download = await fetch(url);
      assert.equal(download.status, 200);
      assert.equal(download.headers.get('content-type'), 'image/png');
      const image = await decode(Buffer.from(await download.arrayBuffer()));
      assert.deepEqual([image.width, image.height], [1024, 1024]);
    });

    test('/files/ streams from the bucket; a client that goes away ends the read from the bucket', async (t) => {
      const store = await open();
      const streams: Readable[] = [];
      const tracking = Object.assign(Object.create(store) as S3BlobStore, {
        open: async (key: string) => {
          const opened = await store.open(key);
          if (opened) streams.push(opened.stream);
          return opened;
        },
      });
      const app = await startTestApp({ blobs: tracking });
      t.after(async () => {
        await app.dispose();
        store.close();
      });
      const now = nowUnix();
      const key = 'images/00000000-0000-4000-8000-00000000abcd.png';
      await store.put(key, Buffer.alloc(32 * 1024 * 1024, 7));
      await app.services.store.putImage({
        id: '00000000-0000-4000-8000-00000000abcd',
        key,
        contentType: 'image/png',
        width: 1,
        height: 1,
        deployment: 'dall-e-3',
        operationId: null,
        created: now,
        expires: now + 600,
      });
      const base = (await app.server.listen({ host: '127.0.0.1', port: 0 })).replace(/\/+$/, '');
      const link = await app.services.imageLinks.urlOf(base, { key, expires: now + 600 });

      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const request = httpGet(link, (res) => {
          res.once('data', () => {
            resolve(res.headers);
            request.destroy();
          });
        });
        request.on('error', (error) => {
          if (!request.destroyed) reject(error);
        });
      });
      assert.equal(headers['content-length'], String(32 * 1024 * 1024));
      assert.equal(streams.length, 1);
      for (let i = 0; i < 200 && !streams[0]!.destroyed; i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(streams[0]!.destroyed, 'the stream from the bucket was destroyed');
    });
  });
}

// Needs no bucket: the store is opened against a closed port, in a process of its own, since the SDK
// warns at most once per process. On Node 20 the SDK would print its Node-version warning there;
// on later Node lines it never does, and the test shows only that nothing else is printed.
test("opening a store prints nothing on stderr, not even the SDK's Node-version warning", async () => {
  const endpoint = `http://127.0.0.1:${await closedPort()}`;
  const script = `
    const { S3BlobStore } = await import(${JSON.stringify(new URL('../../src/storage/s3-blob-store.ts', import.meta.url).href)});
    await S3BlobStore.open({ endpoint: ${JSON.stringify(endpoint)}, bucket: 'b', forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' } }).catch(() => {});`;
  const env = { ...process.env };
  delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { env });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '');
});

function port(server: Server): number {
  return (server.address() as { port: number }).port;
}

async function listen(server: Server): Promise<{ server: Server; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port that was free a moment ago and has no listener. */
async function closedPort(): Promise<number> {
  const probe = await listen(createServer());
  const free = port(probe.server);
  await probe.close();
  return free;
}

/** Forwards TCP to the bucket; closing it cuts every connection and refuses new ones, as a lost bucket does. */
async function tcpProxy(target: number): Promise<{ port: number; close(): Promise<void> }> {
  const upstreams = new Set<Socket>();
  const proxy = await listen(
    createServer((client) => {
      const socket = connect(target, '127.0.0.1');
      upstreams.add(socket);
      socket.on('close', () => upstreams.delete(socket));
      client.pipe(socket).pipe(client);
      const end = () => {
        client.destroy();
        socket.destroy();
      };
      client.on('error', end).on('close', end);
      socket.on('error', end).on('close', end);
    }),
  );
  return {
    port: port(proxy.server),
    close: async () => {
      for (const socket of upstreams) socket.destroy();
      await proxy.close();
    },
  };
}

/**
 * Forwards HTTP to the bucket, counting objects' PUTs; `failNextPuts` makes the next ones answer with an S3
 * error of its own instead (as a busy or refusing bucket would).
 */
async function faultyProxy(target: number) {
  let failures: { left: number; status: number; code: string } = { left: 0, status: 0, code: '' };
  const counts = { puts: 0 };
  const proxy = await listen(
    createHttpServer((req, res) => {
      // An object's PUT (/bucket/key), not the bucket's creation (/bucket).
      const objectPut = req.method === 'PUT' && /^\/[^/]+\/[^?]/.test(req.url!);
      if (objectPut) counts.puts++;
      if (objectPut && failures.left > 0) {
        failures.left--;
        req.resume();
        res.writeHead(failures.status, { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${failures.code}</Code><Message>injected</Message></Error>`,
        );
        return;
      }
      const upstream = httpRequest(
        { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    }) as unknown as Server,
  );
  return {
    port: port(proxy.server),
    get puts() {
      return counts.puts;
    },
    failNextPuts(count: number, status: number, code: string) {
      failures = { left: count, status, code };
    },
    close: () => proxy.close(),
  };
}
