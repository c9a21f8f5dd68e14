import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
