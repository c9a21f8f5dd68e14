import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import Database from 'better-sqlite3';

import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import { image, operation, operationStoreContract, sweeperCapabilitiesContract } from './operation-store.contract.ts';

const dir = await mkdtemp(join(tmpdir(), 'easel-sqlite-'));
after(() => rm(dir, { recursive: true, force: true }));
let files = 0;

operationStoreContract('sqlite :memory:', async () => new SqliteOperationStore(':memory:'));
operationStoreContract('sqlite file', async () => new SqliteOperationStore(join(dir, `contract-${files++}.db`)));
sweeperCapabilitiesContract('sqlite :memory:', async () => new SqliteOperationStore(':memory:'));

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

test('sqlite: inDataDir creates the directory and keeps the data in easel.db, in WAL mode, schema version 2', async () => {
  const dataDir = join(dir, 'nested', 'data');
  const store = SqliteOperationStore.inDataDir(dataDir);
  await store.createOperation(operation());
  await store.close();

  const db = new Database(join(dataDir, 'easel.db'), { readonly: true });
  try {
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(db.prepare('SELECT id, status FROM operations').all(), [{ id: 'op-1', status: 'notRunning' }]);
  } finally {
    db.close();
  }
});

test('sqlite: a version-1 database keeps its rows and gains the (expires, id) indexes of the expiry pages', async () => {
  const path = join(dir, 'version-1.db');
  const old = new Database(path);
  // Version 1's schema as it shipped (the first migration), with one row in each table.
  old.exec(`CREATE TABLE operations (id TEXT PRIMARY KEY, status TEXT NOT NULL, deployment TEXT NOT NULL,
      request_json TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, updated INTEGER NOT NULL,
      result_json TEXT, error_json TEXT);
    CREATE INDEX operations_status ON operations (status, created);
    CREATE INDEX operations_expires ON operations (expires);
    CREATE TABLE images (id TEXT PRIMARY KEY, key TEXT NOT NULL, content_type TEXT NOT NULL, width INTEGER NOT NULL,
      height INTEGER NOT NULL, deployment TEXT NOT NULL, operation_id TEXT, created INTEGER NOT NULL,
      expires INTEGER NOT NULL);
    CREATE INDEX images_operation ON images (operation_id);
    CREATE INDEX images_expires ON images (expires);
    INSERT INTO operations VALUES ('op-old', 'succeeded', 'dall-e-2', '{}', 1, 5, 1, NULL, NULL);
    INSERT INTO images VALUES ('img-old', 'images/img-old.png', 'image/png', 1, 1, 'dall-e-2', NULL, 1, 5);`);
  old.pragma('user_version = 1');
  old.close();

  const store = new SqliteOperationStore(path);
  try {
    assert.deepEqual(await store.expiredOperationsPage(10, null, 5), { items: ['op-old'], next: null });
    assert.deepEqual(
      (await store.expiredImagesPage(10, null, 5)).items.map((i) => i.id),
      ['img-old'],
    );
  } finally {
    await store.close();
  }
  const db = new Database(path, { readonly: true });
  try {
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    const indexes = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%expires%'")
      .pluck()
      .all();
    assert.deepEqual(indexes.sort(), ['images_expires_id', 'operations_expires_id']);
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
