import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import type { ImageRecord, OperationRecord } from '../../src/jobs/operation-store.ts';
import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import { type BlobStore, listAll } from '../../src/storage/blob-store.ts';
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

async function keysOf(blobs: BlobStore, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of listAll(blobs, prefix)) keys.push(key);
  return keys;
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

  assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0, transient: 0 });
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

  assert.deepEqual(await sweeper.sweepOnce(), { images: 2, operations: 1, orphans: 0, transient: 0 });
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

  assert.deepEqual(await sweeper.sweepOnce(), { images: 0, operations: 0, orphans: 1, transient: 0 });
  assert.deepEqual(await keysOf(blobs), ['images/fresh-orphan.webp', 'images/live.png', 'keys/not-an-image.bin']);
});

test('the orphan grace period is configurable', async (t) => {
  const { store, blobs, orphan } = await setup(t);
  await orphan('images/x.png', 60);
  const sweeper = new Sweeper({ store, blobs, intervalSeconds: 60, orphanGraceSeconds: 30, now: () => NOW });
  assert.deepEqual(await sweeper.sweepOnce(), { images: 0, operations: 0, orphans: 1, transient: 0 });
});

test('a deletion that fails is logged, keeps its record for the next sweep, and the sweep goes on', async (t) => {
  const { store, blobs, stored, warnings } = await setup(t);
  await stored(image('stuck', NOW - 1));
  await stored(image('fine', NOW - 1));
  const failing: BlobStore = {
    put: (k, b) => blobs.put(k, b),
    get: (k) => blobs.get(k),
    open: (k) => blobs.open(k),
    list: (prefix, options) => blobs.list(prefix, options),
    delete: async (k) => {
      if (k === 'images/stuck.png') throw new Error('disk says no');
      await blobs.delete(k);
    },
  };
  const log: SweeperLog = { info: () => {}, warn: (details) => warnings.push(details) };
  const sweeper = new Sweeper({ store, blobs: failing, intervalSeconds: 60, now: () => NOW, log });

  assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0, transient: 0 });
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

/** The blob store with every list call recorded (prefix and cursor). */
function recordingLists(blobs: BlobStore) {
  const lists: { prefix: string; startAfter: string | undefined }[] = [];
  const recording: BlobStore = {
    put: (k, b) => blobs.put(k, b),
    get: (k) => blobs.get(k),
    open: (k) => blobs.open(k),
    delete: (k) => blobs.delete(k),
    list: (prefix, options) => {
      lists.push({ prefix, startAfter: options?.startAfter });
      return blobs.list(prefix, options);
    },
  };
  return { recording, lists };
}

describe('one sweeper at a time', () => {
  test('while another holder has the lease a pass does nothing and says so; once released it sweeps', async (t) => {
    const { store, blobs, sweeper, stored, orphan } = await setup(t);
    await stored(image('old', NOW - 1));
    await orphan('transient/upload-1', 7200);
    const other = await store.tryAcquireSweepLock();
    assert.ok(other);

    assert.equal(await sweeper.sweepOnce(), null);
    assert.notEqual(await store.getImage('old'), null);
    assert.deepEqual(await keysOf(blobs), ['images/old.png', 'transient/upload-1']);

    await other.release();
    assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0, transient: 1 });
  });

  test('the lease is released after each pass, also one that fails', async (t) => {
    const { store, blobs } = await setup(t);
    const broken: BlobStore = {
      ...blobs,
      put: (k, b) => blobs.put(k, b),
      get: (k) => blobs.get(k),
      open: (k) => blobs.open(k),
      delete: (k) => blobs.delete(k),
      list: async () => {
        throw new Error('bucket unreachable');
      },
    };
    const failing = new Sweeper({ store, blobs: broken, intervalSeconds: 60, now: () => NOW });
    await assert.rejects(failing.sweepOnce(), /bucket unreachable/);
    const lease = await store.tryAcquireSweepLock();
    assert.ok(lease, 'the failed pass gave the lease back');
    await lease.release();
    const working = new Sweeper({ store, blobs, intervalSeconds: 60, now: () => NOW });
    assert.deepEqual(await working.sweepOnce(), { images: 0, operations: 0, orphans: 0, transient: 0 });
  });

  test('a store without a sweeper lease lets every pass run', async (t) => {
    const { store, blobs, stored } = await setup(t);
    await stored(image('old', NOW - 1));
    // Held on the real store: a sweeper that asked for it would skip.
    const held = await store.tryAcquireSweepLock();
    t.after(() => held?.release());
    const lockless = new Proxy(store, {
      get: (target, name) => {
        if (name === 'tryAcquireSweepLock') return undefined;
        const value = Reflect.get(target, name) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const sweeper = new Sweeper({ store: lockless, blobs, intervalSeconds: 60, now: () => NOW });
    assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0, transient: 0 });
  });
});

describe('expired records in pages', () => {
  test('one pass removes every expired record, page after page', async (t) => {
    const { store, blobs, stored } = await setup(t);
    for (let i = 0; i < 5; i++) {
      await store.createOperation(operation(`op-${i}`, NOW - i));
      await stored(image(`op-img-${i}`, NOW + 3600, `op-${i}`));
    }
    for (let i = 0; i < 7; i++) await stored(image(`img-${i}`, NOW - 10 + i));
    await stored(image('kept', NOW + 1));
    const sweeper = new Sweeper({ store, blobs, intervalSeconds: 60, pageSize: 2, now: () => NOW });

    assert.deepEqual(await sweeper.sweepOnce(), { images: 12, operations: 5, orphans: 0, transient: 0 });
    assert.deepEqual(await store.expiredOperationsPage(NOW, null, 10), { items: [], next: null });
    assert.deepEqual(await store.expiredImagesPage(NOW, null, 10), { items: [], next: null });
    assert.deepEqual(await keysOf(blobs), ['images/kept.png']);
  });

  test('a record that cannot be deleted does not stop the pages after it, and is retried next pass', async (t) => {
    const { store, blobs, stored } = await setup(t);
    for (let i = 0; i < 6; i++) await stored(image(`img-${i}`, NOW - 10 + i));
    let refuse = true;
    const flaky: BlobStore = {
      put: (k, b) => blobs.put(k, b),
      get: (k) => blobs.get(k),
      open: (k) => blobs.open(k),
      list: (prefix, options) => blobs.list(prefix, options),
      delete: async (k) => {
        if (refuse && k === 'images/img-0.png') throw new Error('not now');
        await blobs.delete(k);
      },
    };
    const sweeper = new Sweeper({ store, blobs: flaky, intervalSeconds: 60, pageSize: 2, now: () => NOW });
    assert.deepEqual(await sweeper.sweepOnce(), { images: 5, operations: 0, orphans: 0, transient: 0 });
    assert.deepEqual(
      (await store.expiredImagesPage(NOW, null, 10)).items.map((i) => i.id),
      ['img-0'],
    );
    refuse = false;
    assert.deepEqual(await sweeper.sweepOnce(), { images: 1, operations: 0, orphans: 0, transient: 0 });
  });
});

describe('orphans, one page of image keys per pass', () => {
  test('each pass lists one page of images/ after the last, and wraps around at the end', async (t) => {
    const { store, blobs, orphan, stored } = await setup(t);
    for (const name of ['a', 'b', 'c', 'd', 'e']) await orphan(`images/${name}.png`, 7200);
    await stored(image('live', NOW + 3600));
    const { recording, lists } = recordingLists(blobs);
    const sweeper = new Sweeper({ store, blobs: recording, intervalSeconds: 60, pageSize: 2, now: () => NOW });

    const orphansPerPass: number[] = [];
    for (let pass = 0; pass < 4; pass++) orphansPerPass.push((await sweeper.sweepOnce())!.orphans);
    // Keys in order: a b | c d | e live | (wrapped) live.
    assert.deepEqual(orphansPerPass, [2, 2, 1, 0]);
    assert.deepEqual(
      lists.filter((l) => l.prefix === 'images/'),
      [
        { prefix: 'images/', startAfter: undefined },
        { prefix: 'images/', startAfter: 'images/b.png' },
        { prefix: 'images/', startAfter: 'images/d.png' },
        { prefix: 'images/', startAfter: undefined },
      ],
    );
    // Nothing else of the store is ever listed: only images/ and transient/.
    assert.deepEqual([...new Set(lists.map((l) => l.prefix))].sort(), ['images/', 'transient/']);
    assert.deepEqual(await keysOf(blobs), ['images/live.png']);
  });

  test('an orphan still in its grace period is spared, and removed on a later round once old enough', async (t) => {
    const { store, blobs, orphan } = await setup(t);
    await orphan('images/young.png', 60);
    let now = NOW;
    const sweeper = new Sweeper({ store, blobs, intervalSeconds: 60, pageSize: 1, now: () => now });
    assert.equal((await sweeper.sweepOnce())!.orphans, 0);
    now = NOW + 3600;
    assert.equal((await sweeper.sweepOnce())!.orphans, 1);
    assert.deepEqual(await keysOf(blobs), []);
  });
});

describe('transient files', () => {
  test('transient files older than the limit (default one hour) are removed; younger ones kept', async (t) => {
    const { sweeper, blobs, orphan } = await setup(t);
    await orphan('transient/old-upload', 3600);
    await orphan('transient/job-1/preview-0.png', 7200);
    await orphan('transient/new-upload', 3599);
    await orphan('elsewhere/old', 7200);
    assert.deepEqual(await sweeper.sweepOnce(), { images: 0, operations: 0, orphans: 0, transient: 2 });
    assert.deepEqual(await keysOf(blobs), ['elsewhere/old', 'transient/new-upload']);
  });

  test('the limit is configurable, and every page of transient/ is read in one pass', async (t) => {
    const { store, blobs, orphan } = await setup(t);
    for (let i = 0; i < 5; i++) await orphan(`transient/${i}`, 120);
    await orphan('transient/fresh', 10);
    const { recording, lists } = recordingLists(blobs);
    const sweeper = new Sweeper({
      store,
      blobs: recording,
      intervalSeconds: 60,
      transientMaxAgeSeconds: 60,
      pageSize: 2,
      now: () => NOW,
    });
    assert.equal((await sweeper.sweepOnce())!.transient, 5);
    assert.deepEqual(await keysOf(blobs), ['transient/fresh']);
    assert.equal(lists.filter((l) => l.prefix === 'transient/').length, 3);
  });
});

test('a page size that is not a positive integer is refused', async (t) => {
  const { store, blobs } = await setup(t);
  assert.throws(() => new Sweeper({ store, blobs, intervalSeconds: 60, pageSize: 0 }), RangeError);
});
