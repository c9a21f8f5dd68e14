import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';

import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';

async function tempStore(t: TestContext): Promise<FsBlobStore> {
  const root = await mkdtemp(join(tmpdir(), 'easel-blobs-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return new FsBlobStore(root);
}

async function allKeys(store: FsBlobStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.keys()) keys.push(key);
  return keys.sort();
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

test('a deleted key reads as null, and deleting a missing key is not an error', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('x'));
  await store.delete('images/a.png');
  assert.equal(await store.get('images/a.png'), null);
  await store.delete('images/a.png');
  await store.delete('nowhere/b.png');
});

test('keys lists every stored key, nested ones included, and skips temp files', async (t) => {
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
  }
  assert.deepEqual(await allKeys(store), []);
});

test('lastModified gives the write time in unix seconds, or null for a missing key', async (t) => {
  const store = await tempStore(t);
  await store.put('images/a.png', Buffer.from('x'));
  await utimes(join(store.root, 'images', 'a.png'), 1_700_000_000, 1_700_000_123);
  assert.equal(await store.lastModified('images/a.png'), 1_700_000_123);
  assert.equal(await store.lastModified('images/none.png'), null);
});
