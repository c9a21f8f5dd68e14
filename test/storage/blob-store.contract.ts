// The BlobStore port's contract (src/storage/blob-store.ts): every adapter runs these, the file store
// on a temporary directory and the S3 store on a real radosgw (scripts/services/s3.sh).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';

import { type BlobStore, listAll } from '../../src/storage/blob-store.ts';

/** A fresh, empty store for one test; cleanup is registered on `t`. */
export type MakeBlobStore = (t: TestContext) => Promise<BlobStore>;

async function readAll(stream: Readable): Promise<{ bytes: Buffer; chunks: number }> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), chunks: chunks.length };
}

async function keysOf(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of listAll(store, prefix, 2)) keys.push(entry.key);
  return keys;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export function blobStoreContract(name: string, make: MakeBlobStore): void {
  test(`${name}: stored bytes read back whole and as a stream with their size`, async (t) => {
    const store = await make(t);
    await store.put('images/a.png', Buffer.from('first bytes'));
    assert.deepEqual(await store.get('images/a.png'), Buffer.from('first bytes'));
    const opened = await store.open('images/a.png');
    assert.ok(opened);
    assert.equal(opened.size, 11);
    assert.deepEqual((await readAll(opened.stream)).bytes, Buffer.from('first bytes'));
  });

  test(`${name}: putting a key again replaces its bytes`, async (t) => {
    const store = await make(t);
    await store.put('images/a.png', Buffer.from('first'));
    await store.put('images/a.png', Buffer.from('second, longer'));
    assert.deepEqual(await store.get('images/a.png'), Buffer.from('second, longer'));
    assert.equal((await store.open('images/a.png'))?.size, 14);
    assert.deepEqual(await keysOf(store, ''), ['images/a.png']);
  });

  test(`${name}: an empty object is stored and read as zero bytes`, async (t) => {
    const store = await make(t);
    await store.put('transient/empty', Buffer.alloc(0));
    assert.deepEqual(await store.get('transient/empty'), Buffer.alloc(0));
    const opened = await store.open('transient/empty');
    assert.equal(opened?.size, 0);
    assert.deepEqual((await readAll(opened!.stream)).bytes, Buffer.alloc(0));
  });

  test(`${name}: a missing key reads as null, whole or opened`, async (t) => {
    const store = await make(t);
    assert.equal(await store.get('images/none.png'), null);
    assert.equal(await store.open('images/none.png'), null);
  });

  test(`${name}: a deleted key reads as null, and deleting a missing key is not an error`, async (t) => {
    const store = await make(t);
    await store.put('images/a.png', Buffer.from('x'));
    await store.delete('images/a.png');
    assert.equal(await store.get('images/a.png'), null);
    assert.equal(await store.open('images/a.png'), null);
    await store.delete('images/a.png');
    await store.delete('nowhere/b.png');
    assert.deepEqual(await keysOf(store, ''), []);
  });

  test(`${name}: a large object streams in many chunks, byte for byte`, async (t) => {
    const store = await make(t);
    const bytes = randomBytes(24 * 1024 * 1024 + 7);
    await store.put('images/large.png', bytes);
    const opened = await store.open('images/large.png');
    assert.ok(opened);
    assert.equal(opened.size, bytes.length);
    const read = await readAll(opened.stream);
    assert.ok(read.chunks > 1, `${read.chunks} chunk(s)`);
    assert.equal(read.bytes.length, bytes.length);
    assert.equal(sha256(read.bytes), sha256(bytes));
  });

  test(`${name}: a stream destroyed part-way leaves the store usable`, async (t) => {
    const store = await make(t);
    const bytes = randomBytes(8 * 1024 * 1024);
    await store.put('images/big.png', bytes);
    for (let i = 0; i < 3; i++) {
      const opened = await store.open('images/big.png');
      assert.ok(opened);
      for await (const chunk of opened.stream) {
        assert.ok((chunk as Buffer).length > 0);
        break; // leaving the loop destroys the stream
      }
      // An HTTP body (S3) finishes destroying asynchronously.
      const stream = opened.stream;
      await new Promise((resolve) => (stream.closed ? resolve(null) : stream.once('close', resolve)));
      assert.ok(stream.destroyed);
    }
    assert.equal(sha256((await store.get('images/big.png'))!), sha256(bytes));
  });

  test(`${name}: list gives the keys under a prefix in ascending order with their write time`, async (t) => {
    const store = await make(t);
    const before = Math.floor(Date.now() / 1000);
    for (const key of [
      'images/b.png',
      'images/a.webp',
      'images/c/nested.png',
      'images-other/x.png',
      'imagesZ',
      'top',
    ]) {
      await store.put(key, Buffer.from(key));
    }
    const page = await store.list('images/');
    assert.deepEqual(
      page.entries.map((e) => e.key),
      ['images/a.webp', 'images/b.png', 'images/c/nested.png'],
    );
    assert.equal(page.next, null);
    for (const { modified } of page.entries) {
      // The server's clock, seconds: not before the test began (a minute of slack for a skewed clock).
      assert.ok(Number.isInteger(modified) && modified >= before - 60 && modified <= before + 600, String(modified));
    }
    // A prefix is a string prefix, not a folder.
    assert.deepEqual(await keysOf(store, 'images'), [
      'images-other/x.png',
      'images/a.webp',
      'images/b.png',
      'images/c/nested.png',
      'imagesZ',
    ]);
    assert.deepEqual(await keysOf(store, 'images/c'), ['images/c/nested.png']);
    assert.deepEqual(await keysOf(store, 'nothing/'), []);
    assert.deepEqual(await keysOf(store, ''), [
      'images-other/x.png',
      'images/a.webp',
      'images/b.png',
      'images/c/nested.png',
      'imagesZ',
      'top',
    ]);
  });

  test(`${name}: list pages: each page after the last, a cursor per page, null after the last`, async (t) => {
    const store = await make(t);
    const keys = ['transient/1', 'transient/2', 'transient/3', 'transient/4', 'transient/5'];
    for (const key of [...keys].reverse()) await store.put(key, Buffer.from(key));

    const first = await store.list('transient/', { limit: 2 });
    assert.deepEqual(
      first.entries.map((e) => e.key),
      ['transient/1', 'transient/2'],
    );
    assert.equal(first.next, 'transient/2');
    const second = await store.list('transient/', { limit: 2, startAfter: first.next! });
    assert.deepEqual(
      second.entries.map((e) => e.key),
      ['transient/3', 'transient/4'],
    );
    const last = await store.list('transient/', { limit: 2, startAfter: second.next! });
    assert.deepEqual(
      last.entries.map((e) => e.key),
      ['transient/5'],
    );
    assert.equal(last.next, null);
  });

  test(`${name}: startAfter may be any key, stored or not, and a page after the last key is empty`, async (t) => {
    const store = await make(t);
    for (const key of ['images/a.png', 'images/c.png', 'images/e.png']) await store.put(key, Buffer.from(key));
    const page = await store.list('images/', { startAfter: 'images/b' });
    assert.deepEqual(
      page.entries.map((e) => e.key),
      ['images/c.png', 'images/e.png'],
    );
    assert.deepEqual(await store.list('images/', { startAfter: 'images/e.png' }), { entries: [], next: null });
    assert.deepEqual(await store.list('images/', { startAfter: 'images/z' }), { entries: [], next: null });
  });

  test(`${name}: a deleted key leaves the listing; a page limit that is not a positive integer is refused`, async (t) => {
    const store = await make(t);
    await store.put('images/a.png', Buffer.from('a'));
    await store.put('images/b.png', Buffer.from('b'));
    await store.delete('images/a.png');
    assert.deepEqual(await keysOf(store, 'images/'), ['images/b.png']);
    await assert.rejects(store.list('images/', { limit: 0 }), RangeError);
    await assert.rejects(store.list('images/', { limit: 1.5 }), RangeError);
  });
}
