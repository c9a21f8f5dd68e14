// Faults around DALL-E 2 operations: a store whose writes fail for a while (a full disk) must not
// strand an operation, and a failure's server-side details (paths, errno, stack) stay in the log.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EngineError } from '../../src/engines/engine.ts';
import { InProcessQueue } from '../../src/jobs/in-process-queue.ts';
import type { JobData, JobResult } from '../../src/jobs/job-contract.ts';
import type { OperationRecord, OperationStore } from '../../src/jobs/operation-store.ts';
import { Operations } from '../../src/jobs/operations.ts';
import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { generationRequest } from '../helpers/requests.ts';

const request = (prompt = 'a red kite') =>
  generationRequest({ deployment: 'dall-e-2', family: 'dall-e-2', quality: null, style: null, prompt });
const noBlobs: BlobStore = {
  put: async () => {},
  get: async () => null,
  open: async () => null,
  delete: async () => {},
  list: async () => ({ entries: [], next: null }),
};
const ended = (r: OperationRecord | null) => r !== null && ['succeeded', 'failed', 'canceled'].includes(r.status);

/** An error as Node's fs raises it when the data directory cannot be written. */
function fsError(code: 'EACCES' | 'ENOSPC', path: string): Error {
  const message = code === 'EACCES' ? 'permission denied' : 'no space left on device';
  return Object.assign(new Error(`${code}: ${message}, open '${path}'`), {
    code,
    errno: code === 'EACCES' ? -13 : -28,
    syscall: 'open',
    path,
  });
}

/** The SQLite store, with state writes that throw ENOSPC while `full` is set. */
class FillingStore extends SqliteOperationStore {
  full = false;
  failedWrites = 0;
  override async transition(...args: Parameters<OperationStore['transition']>) {
    if (this.full) {
      this.failedWrites++;
      throw fsError('ENOSPC', '/var/lib/easel/easel.db');
    }
    return super.transition(...args);
  }
}

function setup(work: (data: JobData) => Promise<JobResult>) {
  const store = new FillingStore(':memory:');
  const logged: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const log = {
    info() {},
    warn() {},
    error: (obj: object, msg: string) => void logged.push({ obj: obj as Record<string, unknown>, msg }),
  };
  const queue = new InProcessQueue({ concurrency: 1, maxWaiting: 10, jobTimeoutSeconds: 0 });
  const operations = new Operations({ store, blobs: noBlobs, queue, ttlSeconds: 86400, log, retryBaseMs: 2 });
  queue.process(['dall-e-2'], (data, context) =>
    operations.runJob(data.operationId!, context.signal, () => work(data)),
  );
  return {
    store,
    queue,
    operations,
    logged,
    async close() {
      await queue.close();
      await operations.close();
      await store.close();
    },
  };
}

/** Poll until `done` (a generous cap only so that a broken build fails instead of hanging). */
async function until<T>(read: () => Promise<T> | T, done: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 6000; i++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('the expected state never came');
}

/** A job that finishes when told to. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

test('an operation whose success cannot be written while the disk is full succeeds once space is freed, without a restart', async () => {
  const g = gate();
  const ops = setup(async () => {
    await g.opened;
    return { created: 7, revisedPrompt: null, items: [] };
  });
  const op = await ops.operations.submit(request());
  await until(
    () => ops.operations.get(op.id),
    (r) => r?.status === 'running',
  );
  ops.store.full = true;
  g.open();
  await until(
    () => ops.store.failedWrites,
    (n) => n >= 3,
  ); // tried, and tried again
  assert.equal((await ops.operations.get(op.id))?.status, 'running');
  assert.equal(ops.operations.pendingWrites(), 1);
  ops.store.full = false;
  const done = await until(() => ops.operations.get(op.id), ended);
  assert.equal(done?.status, 'succeeded');
  assert.deepEqual(done?.result, { created: 7, items: [] });
  assert.equal(ops.operations.pendingWrites(), 0);
  await ops.close();
});

test('an operation that failed while the disk was full ends failed once space is freed', async () => {
  const ops = setup(async () => {
    throw fsError('ENOSPC', '/var/lib/easel/blobs/images/1.png');
  });
  ops.store.full = false;
  const g = gate();
  // Fill the disk as the job starts running: its `failed` cannot be written at first.
  const original = ops.store.transition.bind(ops.store);
  ops.store.transition = async (id, from, patch) => {
    const moved = await original(id, from, patch);
    if (patch.status === 'running') {
      ops.store.full = true;
      g.open();
    }
    return moved;
  };
  const op = await ops.operations.submit(request());
  await g.opened;
  await until(
    () => ops.store.failedWrites,
    (n) => n >= 2,
  );
  ops.store.full = false;
  const done = await until(() => ops.operations.get(op.id), ended);
  assert.equal(done?.status, 'failed');
  assert.equal(done?.error?.code, 'internalFailure');
  await ops.close();
});

test('an operation whose start cannot be recorded ends failed once the store recovers, not notRunning forever', async () => {
  const ops = setup(async () => ({ created: 1, revisedPrompt: null, items: [] }));
  const queue = ops.queue;
  // Admit with a full disk: createOperation works (an insert), the first state move does not.
  ops.store.full = true;
  const op = await ops.operations.submit(request());
  await until(
    () => ops.store.failedWrites,
    (n) => n >= 3,
  );
  assert.equal((await ops.operations.get(op.id))?.status, 'notRunning');
  ops.store.full = false;
  const done = await until(() => ops.operations.get(op.id), ended);
  assert.equal(done?.status, 'failed');
  assert.equal((await queue.counts('dall-e-2')).active, 0);
  await ops.close();
});

test('a failure from the disk reaches the client as the catalogue message and the operation id; path, errno and stack go to the log', async () => {
  const path = '/srv/private/easel-data/blobs/images/0b1c.png';
  const ops = setup(async () => {
    throw fsError('EACCES', path);
  });
  const op = await ops.operations.submit(request());
  const done = await until(() => ops.operations.get(op.id), ended);
  assert.equal(done?.status, 'failed');
  // The operation id is a random UUID, which can itself hold "-13": look for secrets around it.
  const text = JSON.stringify(done?.error).replaceAll(op.id, '<id>');
  for (const secret of ['/srv', 'easel-data', 'EACCES', '-13', 'permission denied', 'at '])
    assert.ok(!text.includes(secret), `${secret} in ${text}`);
  assert.match(String(done?.error?.message), new RegExp(op.id));
  await until(
    () => ops.logged.length,
    (n) => n > 0,
  );
  const entry = ops.logged.find((l) => l.msg === 'operation failed');
  assert.ok(entry, 'the failure is logged');
  assert.equal((entry.obj.err as Error & { path: string }).path, path);
  await ops.close();
});

test('an engine error keeps its account of the model failure, without paths or errno codes', async () => {
  const ops = setup(async () => {
    throw new EngineError(
      'diffusion failed: Load model from /home/me/models/sd/unet/model.onnx failed: EIO: i/o error\n    at Session (/app/node_modules/x.js:1:1)',
    );
  });
  const op = await ops.operations.submit(request());
  const done = await until(() => ops.operations.get(op.id), ended);
  const message = String(done?.error?.message);
  assert.match(message, /diffusion failed: Load model from …\/model\.onnx failed/);
  for (const secret of ['/home', 'EIO', 'node_modules', '    at '])
    assert.ok(!message.includes(secret), `${secret} in ${message}`);
  await ops.close();
});
