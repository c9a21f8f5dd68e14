// Two nodes sharing one PostgreSQL schema and one blob store: the sweeper lease (an advisory lock)
// lets only one of them sweep at a time. PostgreSQL is started by scripts/services/postgres.sh.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { PostgresOperationStore } from '../../src/jobs/postgres-operation-store.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { Sweeper } from '../../src/storage/sweeper.ts';
import { reportMissingService, startService } from '../helpers/services.ts';
import { image } from '../jobs/operation-store.contract.ts';

const started = startService('postgres');
if (!started.ok) {
  reportMissingService('sweeper on postgres', started.missing);
} else {
  const server = started.service;
  after(() => server.stop());

  test('postgres: while one node sweeps, the other skips its pass; then either may sweep', async (t) => {
    const open = () => PostgresOperationStore.open({ connectionString: server.url, schema: 'sweeper_nodes' });
    const [a, b] = await Promise.all([open(), open()]);
    const root = await mkdtemp(join(tmpdir(), 'easel-sweeper-pg-'));
    t.after(async () => {
      await Promise.all([a.close(), b.close()]);
      await rm(root, { recursive: true, force: true });
    });
    const blobs = new FsBlobStore(root);
    for (let i = 0; i < 5; i++) {
      const record = image({ id: `img-${i}`, key: `images/img-${i}.png`, expires: 100 + i });
      await a.putImage(record);
      await blobs.put(record.key, Buffer.from(record.id));
    }

    // Node A's first deletion waits on a gate, so its pass is in progress while B tries.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const gated: BlobStore = {
      put: (k, v) => blobs.put(k, v),
      get: (k) => blobs.get(k),
      open: (k) => blobs.open(k),
      list: (p, o) => blobs.list(p, o),
      delete: async (k) => {
        entered();
        await gate;
        await blobs.delete(k);
      },
    };
    const now = () => 1000;
    const sweeperA = new Sweeper({ store: a, blobs: gated, intervalSeconds: 60, pageSize: 2, now });
    const sweeperB = new Sweeper({ store: b, blobs, intervalSeconds: 60, pageSize: 2, now });

    const passA = sweeperA.sweepOnce();
    await inside;
    assert.equal(await sweeperB.sweepOnce(), null);
    openGate();
    assert.deepEqual(await passA, { images: 5, operations: 0, orphans: 0, transient: 0 });
    assert.deepEqual(await sweeperB.sweepOnce(), { images: 0, operations: 0, orphans: 0, transient: 0 });
    assert.deepEqual(await b.expiredImagesPage(1000, null, 10), { items: [], next: null });
  });
}
