import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import type { ImageRecord, OperationRecord } from '../../src/jobs/operation-store.ts';
import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { Sweeper, type SweeperLog } from '../../src/storage/sweeper.ts';

const NOW = Math.floor(Date.now() / 1000);

function image(id: string, expires: number, operationId: string | null = null): ImageRecord {
  return {
    id,
    key: `images/${id}.png`,
    contentType: 'image/png',
    width: 1,
    height: 1,
    deployment: 'dall-e-2',
    operationId,
    created: NOW - 100,
    expires,
  };
}

function operation(id: string, expires: number): OperationRecord {
  return {
    id,
    status: 'succeeded',
    deployment: 'dall-e-2',
    request: {},
    created: NOW - 100,
    expires,
    updated: NOW - 100,
    result: null,
    error: null,
  };
}

async function setup(t: TestContext) {
  const root = await mkdtemp(join(tmpdir(), 'easel-sweeper-'));
  const store = new SqliteOperationStore(':memory:');
  const blobs = new FsBlobStore(root);
  t.after(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  const warnings: unknown[] = [];
  const log: SweeperLog = { info: () => {}, warn: (details) => warnings.push(details) };
  /** An image record with its bytes. */
  async function stored(record: ImageRecord) {
    await store.putImage(record);
    await blobs.put(record.key, Buffer.from(record.id));
  }
  /** Bytes with no record, last written `ageSeconds` ago. */
  async function orphan(key: string, ageSeconds: number) {
    await blobs.put(key, Buffer.from('orphan'));
    const when = NOW - ageSeconds;
    await utimes(join(root, key), when, when);
  }
  const sweeper = new Sweeper({ store, blobs, intervalSeconds: 60, now: () => NOW, log });
  return { store, blobs, sweeper, stored, orphan, warnings };
}

test('an expired image loses its record and its bytes; an unexpired one keeps both', async (t) => {
  const { store, blobs, sweeper, stored } = await setup(t);
  await stored(image('old', NOW));
  await stored(image('new', NOW + 1));

  assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0 });
  assert.equal(await store.getImage('old'), null);
  assert.equal(await blobs.get('images/old.png'), null);
  assert.deepEqual(await store.getImage('new'), image('new', NOW + 1));
  assert.deepEqual(await blobs.get('images/new.png'), Buffer.from('new'));
});

test('an expired operation is removed with all its images, even ones not yet expired', async (t) => {
  const { store, blobs, sweeper, stored } = await setup(t);
  await store.createOperation(operation('op-old', NOW - 1));
  await stored(image('a', NOW - 1, 'op-old'));
  await stored(image('b', NOW + 3600, 'op-old'));
  await store.createOperation(operation('op-new', NOW + 3600));
  await stored(image('c', NOW + 3600, 'op-new'));

  assert.deepEqual(await sweeper.sweepOnce(), { images: 2, operations: 1, orphans: 0 });
  assert.equal(await store.getOperation('op-old'), null);
  assert.deepEqual(await store.listImagesOfOperation('op-old'), []);
  assert.equal(await blobs.get('images/a.png'), null);
  assert.equal(await blobs.get('images/b.png'), null);
  assert.notEqual(await store.getOperation('op-new'), null);
  assert.deepEqual(await blobs.get('images/c.png'), Buffer.from('c'));
});

test('orphaned bytes an hour old or older are removed; fresh ones and other keys are kept', async (t) => {
  const { blobs, sweeper, orphan, stored } = await setup(t);
  await stored(image('live', NOW + 3600));
  await utimes(join(blobs.root, 'images/live.png'), NOW - 7200, NOW - 7200);
  await orphan('images/old-orphan.png', 3600);
  await orphan('images/fresh-orphan.webp', 3599);
  await orphan('keys/not-an-image.bin', 7200);

  assert.deepEqual(await sweeper.sweepOnce(), { images: 0, operations: 0, orphans: 1 });
  const left: string[] = [];
  for await (const key of blobs.keys()) left.push(key);
  assert.deepEqual(left.sort(), ['images/fresh-orphan.webp', 'images/live.png', 'keys/not-an-image.bin']);
});

test('the orphan grace period is configurable', async (t) => {
  const { store, blobs, orphan } = await setup(t);
  await orphan('images/x.png', 60);
  const sweeper = new Sweeper({ store, blobs, intervalSeconds: 60, orphanGraceSeconds: 30, now: () => NOW });
  assert.deepEqual(await sweeper.sweepOnce(), { images: 0, operations: 0, orphans: 1 });
});

test('a blob store that cannot tell ages never loses orphans', async (t) => {
  const { store, blobs, orphan } = await setup(t);
  await orphan('images/x.png', 86_400);
  const ageless: BlobStore = {
    put: (k, b) => blobs.put(k, b),
    get: (k) => blobs.get(k),
    delete: (k) => blobs.delete(k),
    keys: () => blobs.keys(),
  };
  const sweeper = new Sweeper({ store, blobs: ageless, intervalSeconds: 60, now: () => NOW });
  assert.deepEqual(await sweeper.sweepOnce(), { images: 0, operations: 0, orphans: 0 });
  assert.deepEqual(await blobs.get('images/x.png'), Buffer.from('orphan'));
});

test('a deletion that fails is logged, keeps its record for the next sweep, and the sweep goes on', async (t) => {
  const { store, blobs, stored, warnings } = await setup(t);
  await stored(image('stuck', NOW - 1));
  await stored(image('fine', NOW - 1));
  const failing: BlobStore = {
    put: (k, b) => blobs.put(k, b),
    get: (k) => blobs.get(k),
    keys: () => blobs.keys(),
    delete: async (k) => {
      if (k === 'images/stuck.png') throw new Error('disk says no');
      await blobs.delete(k);
    },
  };
  const log: SweeperLog = { info: () => {}, warn: (details) => warnings.push(details) };
  const sweeper = new Sweeper({ store, blobs: failing, intervalSeconds: 60, now: () => NOW, log });

  assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0 });
  assert.equal(await store.getImage('fine'), null);
  assert.notEqual(await store.getImage('stuck'), null);
  assert.equal(warnings.length, 1);
  assert.equal((warnings[0] as { imageId: string }).imageId, 'stuck');
});

test('start sweeps on the interval and stop ends it', async (t) => {
  const { store, blobs, stored } = await setup(t);
  await stored(image('old', NOW - 1));
  const sweeper = new Sweeper({ store, blobs, intervalSeconds: 0.01, now: () => NOW });
  sweeper.start();
  for (let i = 0; i < 100 && (await store.getImage('old')) !== null; i++) await new Promise((r) => setTimeout(r, 10));
  await sweeper.stop();
  assert.equal(await store.getImage('old'), null);
});
