// The operation-store contract against a real PostgreSQL started by scripts/services/postgres.sh;
// each store gets a fresh schema of the one server.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import pg from 'pg';

import { PostgresOperationStore } from '../../src/jobs/postgres-operation-store.ts';
import { reportMissingService, startService } from '../helpers/services.ts';
import { operation, operationStoreContract, sweeperCapabilitiesContract } from './operation-store.contract.ts';

const started = startService('postgres');
if (!started.ok) {
  reportMissingService('postgres operation store', started.missing);
} else {
  const server = started.service;
  after(() => server.stop());
  let schemas = 0;
  const fresh = () => `contract_${schemas++}`;
  const open = (schema = fresh()) => PostgresOperationStore.open({ connectionString: server.url, schema });

  operationStoreContract('postgres', () => open());
  sweeperCapabilitiesContract('postgres', () => open());

  test('postgres: two nodes on one schema share the data and the single sweeper lease', async () => {
    const schema = fresh();
    const [a, b] = await Promise.all([open(schema), open(schema)]); // both migrate at once
    try {
      await a.createOperation(operation());
      assert.deepEqual(await b.getOperation('op-1'), operation());
      const outcomes = await Promise.all([
        a.transition('op-1', ['notRunning'], { status: 'running', updated: 1 }),
        b.transition('op-1', ['notRunning'], { status: 'running', updated: 2 }),
      ]);
      assert.equal(outcomes.filter((r) => r !== null).length, 1);

      const lease = await a.tryAcquireSweepLock();
      assert.ok(lease);
      assert.equal(await b.tryAcquireSweepLock(), null);
      await lease.release();
      const other = await b.tryAcquireSweepLock();
      assert.ok(other);
      await other.release();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('postgres: a sweeper lease is freed when its node goes away without releasing it', async () => {
    const schema = fresh();
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    try {
      assert.ok(await a.tryAcquireSweepLock());
      await a.close(); // the connection holding the lock closes
      const lease = await b.tryAcquireSweepLock();
      assert.ok(lease);
      await lease.release();
    } finally {
      await b.close();
    }
  });

  test('postgres: schemas have their own sweeper lease', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const leases = await Promise.all([a.tryAcquireSweepLock(), b.tryAcquireSweepLock()]);
      assert.ok(leases[0] && leases[1]);
      await Promise.all(leases.map((l) => l!.release()));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('postgres: the schema is migrated once and recorded in easel_migrations; reopening keeps the data', async () => {
    const schema = fresh();
    const first = await open(schema);
    await first.createOperation(operation({ request: { prompt: 'nul \u0000 and ü' } }));
    await first.close();
    const second = await open(schema);
    try {
      assert.deepEqual(await second.getOperation('op-1'), operation({ request: { prompt: 'nul \u0000 and ü' } }));
    } finally {
      await second.close();
    }
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT version FROM ${schema}.easel_migrations ORDER BY version`);
      assert.deepEqual(rows, [{ version: 1 }]);
    } finally {
      await client.end();
    }
  });

  test('postgres: a database from a newer easel is refused rather than misread', async () => {
    const schema = fresh();
    await (await open(schema)).close();
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query(`INSERT INTO ${schema}.easel_migrations (version) VALUES (99)`);
    await client.end();
    await assert.rejects(open(schema), /newer than this easel understands/);
  });

  test('postgres: a schema name that is not a plain identifier is refused', async () => {
    await assert.rejects(open('x; DROP TABLE y'), /schema name/);
  });

  test('postgres: an unreachable server rejects open instead of crashing', async () => {
    const url = new URL(server.url);
    url.port = '1';
    await assert.rejects(PostgresOperationStore.open({ connectionString: url.href }));
  });

  test('postgres: calls after close reject instead of crashing', async () => {
    const store = await open();
    await store.close();
    await assert.rejects(store.getOperation('op-1'));
    await store.close();
  });
}
