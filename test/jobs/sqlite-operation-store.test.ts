import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import Database from 'better-sqlite3';

import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import { image, operation, operationStoreContract } from './operation-store.contract.ts';

const dir = await mkdtemp(join(tmpdir(), 'easel-sqlite-'));
after(() => rm(dir, { recursive: true, force: true }));
let files = 0;

operationStoreContract('sqlite :memory:', async () => new SqliteOperationStore(':memory:'));
operationStoreContract('sqlite file', async () => new SqliteOperationStore(join(dir, `contract-${files++}.db`)));

test('sqlite: data survives closing and reopening the same file', async () => {
  const path = join(dir, 'reopen.db');
  const first = new SqliteOperationStore(path);
  const record = operation({ status: 'running', error: { code: 'timeout', message: 'slow' } });
  await first.createOperation(record);
  await first.putImage(image());
  await first.close();

  const second = new SqliteOperationStore(path);
  try {
    assert.deepEqual(await second.getOperation('op-1'), record);
    assert.deepEqual(await second.getImage('img-1'), image());
  } finally {
    await second.close();
  }
});

test('sqlite: inDataDir creates the directory and keeps the data in easel.db, in WAL mode, schema version 1', async () => {
  const dataDir = join(dir, 'nested', 'data');
  const store = SqliteOperationStore.inDataDir(dataDir);
  await store.createOperation(operation());
  await store.close();

  const db = new Database(join(dataDir, 'easel.db'), { readonly: true });
  try {
    assert.equal(db.pragma('user_version', { simple: true }), 1);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(db.prepare('SELECT id, status FROM operations').all(), [{ id: 'op-1', status: 'notRunning' }]);
  } finally {
    db.close();
  }
});

test('sqlite: a database from a newer easel is refused rather than misread', () => {
  const path = join(dir, 'newer.db');
  const db = new Database(path);
  db.pragma('user_version = 99');
  db.close();
  assert.throws(() => new SqliteOperationStore(path), /newer than this easel understands/);
});

test('sqlite: calls after close reject instead of crashing', async () => {
  const store = new SqliteOperationStore(':memory:');
  await store.close();
  await assert.rejects(store.getOperation('op-1'));
  await store.close();
});
