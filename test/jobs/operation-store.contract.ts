// The conformance suite every OperationStore adapter passes (as BullMQ checks its backends):
// call operationStoreContract('sqlite :memory:', () => …) from an adapter's test file.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';

import type {
  ExpiryCursor,
  ExpiryPage,
  ExpiryPages,
  ImageRecord,
  OperationRecord,
  OperationStore,
  SweepLock,
} from '../../src/jobs/operation-store.ts';

export function operation(overrides: Partial<OperationRecord> = {}): OperationRecord {
  return {
    id: 'op-1',
    status: 'notRunning',
    deployment: 'dall-e-2',
    request: { prompt: 'a red fox', n: 2, size: { width: 512, height: 512 }, user: null, tags: ['a', 'b'] },
    created: 1_700_000_000,
    expires: 1_700_086_400,
    updated: 1_700_000_000,
    result: null,
    error: null,
    ...overrides,
  };
}

export function image(overrides: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id: 'img-1',
    key: 'images/img-1.png',
    contentType: 'image/png',
    width: 512,
    height: 512,
    deployment: 'dall-e-2',
    operationId: 'op-1',
    created: 1_700_000_000,
    expires: 1_700_086_400,
    ...overrides,
  };
}

export function operationStoreContract(name: string, make: () => Promise<OperationStore>): void {
  /** A fresh store for one test, closed when the test ends. */
  async function open(t: TestContext): Promise<OperationStore> {
    const store = await make();
    t.after(() => store.close());
    return store;
  }

  test(`${name}: an operation reads back exactly as it was created`, async (t) => {
    const store = await open(t);
    const record = operation({
      status: 'succeeded',
      result: {
        created: 1_700_000_010,
        items: [{ imageId: 'img-1' }, { error: { code: 'contentFilter', message: 'x' } }],
      },
      error: { code: 'internalFailure', message: 'partly failed' },
    });
    await store.createOperation(record);
    assert.deepEqual(await store.getOperation('op-1'), record);
  });

  test(`${name}: an unknown operation reads as null`, async (t) => {
    const store = await open(t);
    assert.equal(await store.getOperation('nope'), null);
  });

  test(`${name}: creating an operation with an id already in use is rejected`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation());
    await assert.rejects(store.createOperation(operation({ deployment: 'other' })));
    assert.equal((await store.getOperation('op-1'))?.deployment, 'dall-e-2');
  });

  test(`${name}: a transition from a listed state applies the patch and returns the new record`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation());
    const running = await store.transition('op-1', ['notRunning'], { status: 'running', updated: 1_700_000_005 });
    assert.deepEqual(running, operation({ status: 'running', updated: 1_700_000_005 }));

    const result = { created: 1_700_000_009, items: [{ imageId: 'img-1' }] };
    const done = await store.transition('op-1', ['running'], { status: 'succeeded', updated: 1_700_000_009, result });
    assert.deepEqual(done, operation({ status: 'succeeded', updated: 1_700_000_009, result }));
    assert.deepEqual(await store.getOperation('op-1'), done);
  });

  test(`${name}: a transition leaves fields the patch does not name unchanged`, async (t) => {
    const store = await open(t);
    const error = { code: 'timeout', message: 'took too long' };
    await store.createOperation(operation({ status: 'running', error }));
    const moved = await store.transition('op-1', ['running'], { status: 'failed' });
    assert.deepEqual(moved, operation({ status: 'failed', error }));
  });

  test(`${name}: a patch with error null clears the stored error`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation({ status: 'running', error: { code: 'x', message: 'y' } }));
    const moved = await store.transition('op-1', ['running'], { status: 'succeeded', error: null });
    assert.equal(moved?.error, null);
  });

  test(`${name}: a transition from an unlisted state returns null and changes nothing`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation({ status: 'succeeded' }));
    assert.equal(await store.transition('op-1', ['notRunning', 'running'], { status: 'canceled', updated: 5 }), null);
    assert.equal(await store.transition('op-1', [], { status: 'canceled' }), null);
    assert.deepEqual(await store.getOperation('op-1'), operation({ status: 'succeeded' }));
  });

  test(`${name}: a transition of an unknown operation returns null`, async (t) => {
    const store = await open(t);
    assert.equal(await store.transition('nope', ['notRunning'], { status: 'running' }), null);
  });

  test(`${name}: of two concurrent moves notRunning → running exactly one wins`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation());
    const outcomes = await Promise.all([
      store.transition('op-1', ['notRunning'], { status: 'running', updated: 1 }),
      store.transition('op-1', ['notRunning'], { status: 'running', updated: 2 }),
    ]);
    const winners = outcomes.filter((r) => r !== null);
    assert.equal(winners.length, 1);
    assert.deepEqual(await store.getOperation('op-1'), winners[0]);
  });

  test(`${name}: listOperations returns only the given states, oldest first`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation({ id: 'c', status: 'running', created: 30 }));
    await store.createOperation(operation({ id: 'a', status: 'notRunning', created: 10 }));
    await store.createOperation(operation({ id: 'done', status: 'succeeded', created: 5 }));
    await store.createOperation(operation({ id: 'b', status: 'running', created: 20 }));
    const listed = await store.listOperations(['notRunning', 'running']);
    assert.deepEqual(
      listed.map((r) => r.id),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(await store.listOperations(['canceled']), []);
  });

  test(`${name}: a deleted operation reads as null and deleting it again is not an error`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation());
    await store.deleteOperation('op-1');
    assert.equal(await store.getOperation('op-1'), null);
    await store.deleteOperation('op-1');
  });

  test(`${name}: an image record reads back exactly, by id and by operation`, async (t) => {
    const store = await open(t);
    const first = image({ id: 'img-1', created: 1 });
    const second = image({ id: 'img-2', key: 'images/img-2.webp', contentType: 'image/webp', created: 2 });
    const unrelated = image({ id: 'img-3', key: 'images/img-3.png', operationId: null });
    await store.putImage(second);
    await store.putImage(first);
    await store.putImage(unrelated);
    assert.deepEqual(await store.getImage('img-3'), unrelated);
    assert.deepEqual(await store.listImagesOfOperation('op-1'), [first, second]);
    assert.deepEqual(await store.listImagesOfOperation('op-9'), []);
    assert.equal(await store.getImage('nope'), null);
  });

  test(`${name}: putting an image with a known id replaces the record`, async (t) => {
    const store = await open(t);
    await store.putImage(image());
    await store.putImage(image({ width: 1024 }));
    assert.equal((await store.getImage('img-1'))?.width, 1024);
  });

  test(`${name}: a deleted image reads as null and deleting it again is not an error`, async (t) => {
    const store = await open(t);
    await store.putImage(image());
    await store.deleteImage('img-1');
    assert.equal(await store.getImage('img-1'), null);
    assert.deepEqual(await store.listImagesOfOperation('op-1'), []);
    await store.deleteImage('img-1');
  });

  test(`${name}: listExpired returns what expires at or before now, and nothing else`, async (t) => {
    const store = await open(t);
    await store.createOperation(operation({ id: 'op-past', expires: 99 }));
    await store.createOperation(operation({ id: 'op-now', expires: 100 }));
    await store.createOperation(operation({ id: 'op-future', expires: 101 }));
    await store.putImage(image({ id: 'img-past', expires: 50 }));
    await store.putImage(image({ id: 'img-now', expires: 100 }));
    await store.putImage(image({ id: 'img-future', expires: 101 }));

    const expired = await store.listExpired(100);
    assert.deepEqual([...expired.operationIds].sort(), ['op-now', 'op-past']);
    assert.deepEqual(expired.images.map((i) => i.id).sort(), ['img-now', 'img-past']);
    assert.deepEqual(
      expired.images.find((i) => i.id === 'img-now'),
      image({ id: 'img-now', expires: 100 }),
    );
    assert.deepEqual(await store.listExpired(10), { operationIds: [], images: [] });
  });
}

/** What the sweeper relies on: expiry pages, and the sweeper lease (optional in the port; both stores have it). */
export function sweeperCapabilitiesContract(
  name: string,
  make: () => Promise<OperationStore & ExpiryPages & SweepLock>,
): void {
  async function open(t: TestContext) {
    const store = await make();
    t.after(() => store.close());
    return store;
  }

  test(`${name}: expired records come in pages ordered by (expires, id), each page after the last`, async (t) => {
    const store = await open(t);
    for (const [id, expires] of [
      ['b', 10],
      ['a', 10],
      ['c', 5],
      ['d', 20],
      ['later', 99],
    ] as const) {
      await store.createOperation(operation({ id, expires }));
      await store.putImage(image({ id: `img-${id}`, expires }));
    }
    const ids: string[][] = [];
    let after: ExpiryCursor | null = null;
    do {
      const page: ExpiryPage<string> = await store.expiredOperationsPage(20, after, 2);
      ids.push(page.items);
      after = page.next;
    } while (after);
    assert.deepEqual(ids, [
      ['c', 'a'],
      ['b', 'd'],
    ]);

    const first = await store.expiredImagesPage(20, null, 3);
    assert.deepEqual(
      first.items.map((i) => i.id),
      ['img-c', 'img-a', 'img-b'],
    );
    assert.deepEqual(first.items[0], image({ id: 'img-c', expires: 5 }));
    const second = await store.expiredImagesPage(20, first.next, 3);
    assert.deepEqual(second, { items: [image({ id: 'img-d', expires: 20 })], next: null });
    assert.deepEqual(await store.expiredImagesPage(1, null, 3), { items: [], next: null });
  });

  test(`${name}: a page survives deletion of the rows before its cursor`, async (t) => {
    const store = await open(t);
    for (const id of ['a', 'b', 'c']) await store.createOperation(operation({ id, expires: 1 }));
    const first = await store.expiredOperationsPage(1, null, 1);
    await store.deleteOperation('a');
    assert.deepEqual((await store.expiredOperationsPage(1, first.next, 5)).items, ['b', 'c']);
  });

  test(`${name}: a page limit that is not a positive integer is refused`, async (t) => {
    const store = await open(t);
    await assert.rejects(store.expiredOperationsPage(1, null, 0), RangeError);
  });

  test(`${name}: one sweeper lease at a time; released, it can be taken again`, async (t) => {
    const store = await open(t);
    const lease = await store.tryAcquireSweepLock();
    assert.ok(lease);
    assert.equal(await store.tryAcquireSweepLock(), null);
    await lease.release();
    await lease.release(); // a second release is harmless
    const again = await store.tryAcquireSweepLock();
    assert.ok(again);
    await again.release();
  });
}
