import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { listAll } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { blobStoreContract } from './blob-store.contract.ts';

async function tempStore(t: TestContext): Promise<FsBlobStore> {
  const root = await mkdtemp(join(tmpdir(), 'easel-blobs-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return new FsBlobStore(root);
}

blobStoreContract('fs', tempStore);

async function allKeys(store: FsBlobStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of listAll(store, '')) keys.push(key);
  return keys;
}

test('stored bytes read back, as a file at the key under the root', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('first'));
  assert.deepEqual(await store.get('images/a.png'), Buffer.from('first'));
  assert.deepEqual(await readFile(join(store.root, 'images', 'a.png')), Buffer.from('first'));
});

test('putting a key again replaces the bytes and leaves no temp files behind', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('first'));
  await store.put('images/a.png', Buffer.from('second'));
  assert.deepEqual(await store.get('images/a.png'), Buffer.from('second'));
  assert.deepEqual(await readdir(join(store.root, 'images')), ['a.png']);
});

test('a missing key reads as null, also before anything was stored', async (t) => {
  const store = await tempStore(t);
  assert.equal(await store.get('images/none.png'), null);
  assert.deepEqual(await allKeys(store), []);
});

test('list gives every stored key, nested ones included, and skips temp files', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('a'));
  await store.put('images/b.webp', Buffer.from('b'));
  await store.put('other/deep/c.bin', Buffer.from('c'));
  await store.put('top', Buffer.from('t'));
  // What a put interrupted by a crash leaves behind.
  await writeFile(join(store.root, 'images', '.0123abcd.tmp'), 'x');
  assert.deepEqual(await allKeys(store), ['images/a.png', 'images/b.webp', 'other/deep/c.bin', 'top']);
});

test('keys that could leave the root are refused', async (t) => {
  const store = await tempStore(t);
  const keys = [
    '../escape.png',
    'images/../../x.png',
    '/etc/passwd',
    'images\\a.png',
    '',
    'images//a.png',
    'images/.tmp',
    'C:/x',
  ];
  for (const key of keys) {
    await assert.rejects(store.put(key, Buffer.from('x')), /Invalid blob key/, key);
    await assert.rejects(store.get(key), /Invalid blob key/, key);
    await assert.rejects(store.delete(key), /Invalid blob key/, key);
    await assert.rejects(store.open(key), /Invalid blob key/, key);
  }
  assert.deepEqual(await allKeys(store), []);
});

test('list gives the write time in unix seconds from the file', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('x'));
  await utimes(join(store.root, 'images', 'a.png'), 1_700_000_000, 1_700_000_123);
  assert.deepEqual((await store.list('images/')).entries, [{ key: 'images/a.png', modified: 1_700_000_123 }]);
});

test('a folder sorts as its name and a slash, so listing order is the order of the keys', async (t) => {
  const store = await tempStore(t);
  // '-' < '.' < '/' < 'Z': a folder "a" sorts after the file "a.txt" and before "aZ".
  for (const key of ['aZ', 'a/x', 'a.txt', 'a-b/x', 'a/y/z']) await store.put(key, Buffer.from(key));
  assert.deepEqual(await allKeys(store), ['a-b/x', 'a.txt', 'a/x', 'a/y/z', 'aZ']);
  const page = await store.list('', { startAfter: 'a/x', limit: 1 });
  assert.deepEqual(page, { entries: [{ key: 'a/y/z', modified: page.entries[0]!.modified }], next: 'a/y/z' });
});

test('a stream opened before a put keeps reading the bytes it opened', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('old bytes'));
  const opened = await store.open('images/a.png');
  await store.put('images/a.png', Buffer.from('new'));
  const chunks: Buffer[] = [];
  for await (const chunk of opened!.stream) chunks.push(chunk as Buffer);
  assert.deepEqual(Buffer.concat(chunks), Buffer.from('old bytes'));
  assert.equal(opened!.size, 9);
});

test('deleting the last key of a folder removes the folders it leaves empty, never a top-level one', async (t) => {
  const store = await tempStore(t);
  await store.put('transient/job-1/0.png', Buffer.from('a'));
  await store.put('transient/job-2/0.png', Buffer.from('b'));
  await store.delete('transient/job-1/0.png');
  assert.deepEqual(await readdir(join(store.root, 'transient')), ['job-2']);
  await store.delete('transient/job-2/0.png');
  assert.deepEqual(await readdir(store.root), ['transient']);
  assert.deepEqual(await readdir(join(store.root, 'transient')), []);
  await store.put('images/a.png', Buffer.from('i'));
  await store.delete('images/a.png');
  assert.deepEqual((await readdir(store.root)).sort(), ['images', 'transient']);
  // The folders come back when a key needs them again.
  await store.put('transient/job-3/0.png', Buffer.from('c'));
  assert.deepEqual(await store.get('transient/job-3/0.png'), Buffer.from('c'));
});

test('jobs putting and deleting in folders of their own, at once, all succeed', async (t) => {
  // What concurrent jobs do with their transient files (partial images, b64_json results): when one
  // job's delete emptied the last folder, its clean-up once removed transient/ itself while another
  // job's put was making transient/<its id>/, and that put failed (ENOENT from mkdir).
  const store = await tempStore(t);
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async (_, job) => {
      for (let round = 0; round < 150; round++) {
        const folder = `transient/job-${job}-${round}`;
        try {
          await store.put(`${folder}/0.png`, Buffer.from('partial'));
          await Promise.all([store.delete(`${folder}/0.png`), store.put(`${folder}/1.png`, Buffer.from('final'))]);
          assert.deepEqual(await store.get(`${folder}/1.png`), Buffer.from('final'));
          await store.delete(`${folder}/1.png`);
        } catch (error) {
          failures.push(error);
        }
      }
    }),
  );
  assert.deepEqual(failures, []);
  assert.deepEqual(await readdir(join(store.root, 'transient')), []);
});

test('a put and a delete that empties the same folder, racing, both succeed', async (t) => {
  const store = await tempStore(t);
  for (let round = 0; round < 50; round++) {
    await store.put(`transient/job/${round}-old`, Buffer.from('old'));
    await Promise.all([
      store.delete(`transient/job/${round}-old`),
      store.put(`transient/job/${round}-new`, Buffer.from('new')),
    ]);
    assert.deepEqual(await store.get(`transient/job/${round}-new`), Buffer.from('new'));
    await store.delete(`transient/job/${round}-new`);
  }
});
