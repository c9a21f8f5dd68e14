import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { DataDirLock } from '../../src/storage/data-dir-lock.ts';
import { startTestApp } from '../helpers/app.ts';

test('a second server on the same data directory is refused until the first releases it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-lock-'));
  try {
    const first = DataDirLock.acquire(dir);
    assert.throws(() => DataDirLock.acquire(dir), /in use by another easel server/);
    first.release();
    DataDirLock.acquire(dir).release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('starting an app on a data directory another app holds fails with a clear error', async () => {
  const app = await startTestApp();
  try {
    await assert.rejects(startTestApp({ dataDir: app.dataDir }), /in use by another easel server/);
  } finally {
    await app.dispose();
  }
});

test('the holder records its URL for the CLI; the record goes with the lock, and a stale one is never followed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-lock-'));
  try {
    assert.equal(DataDirLock.holder(dir), null, 'nobody holds a fresh directory');
    const lock = DataDirLock.acquire(dir);
    assert.deepEqual(DataDirLock.holder(dir), { url: null }, 'held, no address yet');
    lock.recordUrl('http://127.0.0.1:8123');
    assert.deepEqual(DataDirLock.holder(dir), { url: 'http://127.0.0.1:8123' });
    assert.throws(
      () => DataDirLock.acquire(dir),
      /in use by another easel server \(it serves http:\/\/127\.0\.0\.1:8123\)/,
    );
    lock.release();
    assert.equal(existsSync(join(dir, 'server.json')), false);
    assert.equal(DataDirLock.holder(dir), null);
    // What a SIGKILLed server leaves: the record without the lock.
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ url: 'http://127.0.0.1:1' }));
    assert.equal(DataDirLock.holder(dir), null);
    const next = DataDirLock.acquire(dir);
    assert.deepEqual(DataDirLock.holder(dir), { url: null }, 'the new holder does not inherit the old address');
    next.release();
  } finally {
    rmSync(dir, { recursive: true });
  }
});
