import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { JobState } from '../../src/jobs/bullmq-queue.ts';
import { InProcessQueue } from '../../src/jobs/in-process-queue.ts';
import { type JobData, JobFailedError, type JobProducer, type JobResult } from '../../src/jobs/job-contract.ts';
import { OperationReconciler } from '../../src/jobs/operation-reconciler.ts';
import type { OperationRecord } from '../../src/jobs/operation-store.ts';
import { Operations } from '../../src/jobs/operations.ts';
import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { generationRequest } from '../helpers/requests.ts';

const makeRequest = (o: { family: 'dall-e-2'; prompt?: string }) =>
  generationRequest({ deployment: 'dall-e-2', quality: null, style: null, ...o });

const quiet = { info() {}, warn() {}, error() {} };
const noBlobs: BlobStore = {
  put: async () => {},
  get: async () => null,
  open: async () => null,
  delete: async () => {},
  list: async () => ({ entries: [], next: null }),
};

function setup(work: (data: JobData) => Promise<JobResult>) {
  const store = new SqliteOperationStore(':memory:');
  const queue = new InProcessQueue({ concurrency: 1, maxWaiting: 10, jobTimeoutSeconds: 1 });
  const operations = new Operations({ store, blobs: noBlobs, queue, ttlSeconds: 86400, log: quiet });
  queue.process(['dall-e-2'], (data, context) =>
    operations.runJob(data.operationId!, context.signal, () => work(data)),
  );
  return { store, queue, operations };
}

async function until(read: () => Promise<OperationRecord | null>, done: (r: OperationRecord) => boolean) {
  for (let i = 0; i < 200; i++) {
    const record = await read();
    if (record && done(record)) return record;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('operation did not reach the expected state');
}

const ended = (r: OperationRecord) => ['succeeded', 'failed', 'canceled'].includes(r.status);
const oneImage = async (): Promise<JobResult> => ({ created: 1, revisedPrompt: null, items: [] });

test('a submitted operation goes notRunning → running → succeeded', async () => {
  const { store, queue, operations } = setup(oneImage);
  const submitted = await operations.submit(makeRequest({ family: 'dall-e-2' }));
  assert.equal(submitted.status, 'notRunning');
  assert.equal(submitted.expires - submitted.created, 86400);
  const done = await until(() => operations.get(submitted.id), ended);
  assert.equal(done.status, 'succeeded');
  assert.deepEqual(done.result, { created: 1, items: [] });
  await queue.close();
  await store.close();
});

test('an engine failure ends the operation failed with an error, a timeout ends it canceled', async () => {
  const { store, queue, operations } = setup(async (data) => {
    if (data.request.prompt === 'fail') throw new Error('model exploded');
    return new Promise(() => {}); // never finishes: the 1-second limit cancels it
  });
  const failing = await operations.submit(makeRequest({ family: 'dall-e-2', prompt: 'fail' }));
  const failed = await until(() => operations.get(failing.id), ended);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error?.code, 'internalFailure');
  const slow = await operations.submit(makeRequest({ family: 'dall-e-2', prompt: 'slow' }));
  const canceled = await until(() => operations.get(slow.id), ended);
  assert.equal(canceled.status, 'canceled');
  assert.equal(canceled.error?.code, 'timeout');
  await queue.close();
  await store.close();
});

test('only ended operations can be deleted', async () => {
  let release!: () => void;
  const { store, queue, operations } = setup(
    () => new Promise((resolve) => (release = () => resolve({ created: 1, revisedPrompt: null, items: [] }))),
  );
  const op = await operations.submit(makeRequest({ family: 'dall-e-2' }));
  await until(
    () => operations.get(op.id),
    (r) => r.status === 'running',
  );
  assert.deepEqual(await operations.delete(op.id), { deleted: false, status: 'running' });
  release();
  await until(() => operations.get(op.id), ended);
  assert.deepEqual(await operations.delete(op.id), { deleted: true });
  assert.equal((await operations.get(op.id))?.status, 'deleted');
  assert.deepEqual(await operations.delete(op.id), { deleted: false, status: 'deleted' });
  await queue.close();
  await store.close();
});

test('after a restart, running operations fail and waiting ones run again', async () => {
  const { store, queue, operations } = setup(oneImage);
  const base = {
    deployment: 'dall-e-2',
    request: { ...makeRequest({ family: 'dall-e-2' }) } as unknown as Record<string, unknown>,
    created: 1,
    expires: 2e9,
    updated: 1,
    result: null,
    error: null,
  };
  await store.createOperation({ ...base, id: 'was-running', status: 'running' });
  await store.createOperation({ ...base, id: 'was-waiting', status: 'notRunning' });
  assert.deepEqual(await operations.recover(), { resumed: 1, failed: 1 });
  const interrupted = await operations.get('was-running');
  assert.equal(interrupted?.status, 'failed');
  assert.equal(interrupted?.error?.code, 'internalFailure');
  assert.equal((await until(() => operations.get('was-waiting'), ended)).status, 'succeeded');
  await queue.close();
  await store.close();
});

test('an operation cut short by shutdown goes back to notRunning and runs after the restart', async () => {
  const { store, queue, operations } = setup(() => new Promise(() => {})); // still running at shutdown
  const op = await operations.submit(makeRequest({ family: 'dall-e-2' }));
  await until(
    () => operations.get(op.id),
    (r) => r.status === 'running',
  );
  await queue.close({ graceSeconds: 0 });
  assert.equal((await operations.get(op.id))?.status, 'notRunning');

  const restartedQueue = new InProcessQueue({
    concurrency: 1,
    maxWaiting: 10,
    jobTimeoutSeconds: 1,
  });
  const restarted = new Operations({ store, blobs: noBlobs, queue: restartedQueue, ttlSeconds: 86400, log: quiet });
  restartedQueue.process(['dall-e-2'], (data, context) =>
    restarted.runJob(data.operationId!, context.signal, oneImage),
  );
  assert.deepEqual(await restarted.recover(), { resumed: 1, failed: 0 });
  assert.equal((await until(() => restarted.get(op.id), ended)).status, 'succeeded');
  await restartedQueue.close();
  await store.close();
});

describe('operations across processes (scale-out)', () => {
  /** A producer whose jobs the test ends by hand, as a shared queue ends them after a worker died. */
  function manualProducer() {
    const jobs = new Map<string, { reject: (e: unknown) => void; detached: boolean }>();
    const producer: JobProducer = {
      add: async (id, _data, options = {}) => {
        let reject!: (e: unknown) => void;
        const finished = new Promise<JobResult>((_, rej) => (reject = rej));
        jobs.set(id, { reject, detached: options.detached === true });
        return { finished };
      },
      counts: async () => ({ waiting: 0, active: 0 }),
      retryAfterSeconds: async () => 1,
      close: async () => {},
    };
    return { producer, jobs };
  }
  const lost = new JobFailedError({ status: 500, error: { code: 'InternalServerError', message: 'stalled' } as never });

  test('a later attempt takes over an operation left running by a worker that died; a first attempt does not', async () => {
    const store = new SqliteOperationStore(':memory:');
    const { producer } = manualProducer();
    const operations = new Operations({ store, blobs: noBlobs, queue: producer, ttlSeconds: 60, log: quiet });
    const op = await operations.submit(makeRequest({ family: 'dall-e-2' }));
    const signal = new AbortController().signal;
    // The first worker recorded the start, then died.
    assert.ok(await store.transition(op.id, ['notRunning'], { status: 'running', updated: 1 }));
    await assert.rejects(operations.runJob(op.id, signal, oneImage, 1), /no longer waiting to run/);
    await operations.runJob(op.id, signal, oneImage, 2);
    assert.equal((await operations.get(op.id))?.status, 'succeeded');
    // An ended operation is never run again, whatever the attempt.
    await assert.rejects(operations.runJob(op.id, signal, oneImage, 3), /no longer waiting to run/);
    await store.close();
  });

  test('settleLostJobs: jobs are added detached, and one that ends failed with its operation still open fails it', async () => {
    const store = new SqliteOperationStore(':memory:');
    const { producer, jobs } = manualProducer();
    const operations = new Operations({
      store,
      blobs: noBlobs,
      queue: producer,
      ttlSeconds: 60,
      log: quiet,
      settleLostJobs: true,
    });
    const waiting = await operations.submit(makeRequest({ family: 'dall-e-2' }));
    const running = await operations.submit(makeRequest({ family: 'dall-e-2' }));
    const done = await operations.submit(makeRequest({ family: 'dall-e-2' }));
    assert.equal(jobs.get(waiting.id)?.detached, true);
    await store.transition(running.id, ['notRunning'], { status: 'running', updated: 1 });
    await store.transition(done.id, ['notRunning'], {
      status: 'succeeded',
      updated: 1,
      result: { created: 1, items: [] },
    });
    for (const id of [waiting.id, running.id, done.id]) jobs.get(id)!.reject(lost);
    const failed = await until(() => operations.get(running.id), ended);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'internalFailure');
    assert.match(failed.error?.message ?? '', /workers running this operation stopped/);
    assert.equal((await until(() => operations.get(waiting.id), ended)).status, 'failed');
    assert.equal((await operations.get(done.id))?.status, 'succeeded', 'an ended operation keeps its outcome');
    await store.close();
  });

  test('embedded (no settleLostJobs): a job that ends failed leaves its operation for recover()', async () => {
    const store = new SqliteOperationStore(':memory:');
    const { producer, jobs } = manualProducer();
    const operations = new Operations({ store, blobs: noBlobs, queue: producer, ttlSeconds: 60, log: quiet });
    const op = await operations.submit(makeRequest({ family: 'dall-e-2' }));
    assert.equal(jobs.get(op.id)?.detached, false);
    jobs.get(op.id)!.reject(lost);
    await new Promise((r) => setImmediate(r));
    assert.equal((await operations.get(op.id))?.status, 'notRunning');
    await store.close();
  });
});

describe('OperationReconciler', () => {
  test('fails open operations left unchanged past the grace whose job failed, finished or is gone; leaves the rest', async () => {
    const store = new SqliteOperationStore(':memory:');
    let now = 1000;
    const states = new Map<string, JobState>();
    const make = async (status: 'notRunning' | 'running' | 'succeeded', updated: number, job: JobState) => {
      const id = `op-${store.constructor.name}-${states.size}`;
      await store.createOperation({
        id,
        status,
        deployment: 'dall-e-2',
        request: {},
        created: updated,
        expires: updated + 86400,
        updated,
        result: status === 'succeeded' ? { created: 1, items: [] } : null,
        error: null,
      });
      states.set(id, job);
      return id;
    };
    const lostRunning = await make('running', 900, 'failed');
    const lostWaiting = await make('notRunning', 900, 'missing');
    const completedUnwritten = await make('running', 900, 'completed');
    const stillWaiting = await make('notRunning', 900, 'waiting');
    const stillActive = await make('running', 900, 'active');
    const recent = await make('running', 990, 'missing');
    const ended = await make('succeeded', 900, 'missing');
    const asked: string[] = [];
    const reconciler = new OperationReconciler({
      store,
      jobState: async (_deployment, id) => (asked.push(id), states.get(id)!),
      graceSeconds: 60,
      intervalSeconds: 3600,
      log: quiet,
      now: () => now,
    });
    assert.equal(await reconciler.reconcileOnce(), 3);
    for (const id of [lostRunning, lostWaiting, completedUnwritten]) {
      const record = await store.getOperation(id);
      assert.equal(record?.status, 'failed', id);
      assert.match(record?.error?.message ?? '', /workers running this operation stopped/);
    }
    for (const id of [stillWaiting, stillActive, recent])
      assert.notEqual((await store.getOperation(id))?.status, 'failed');
    assert.equal((await store.getOperation(ended))?.status, 'succeeded');
    assert.ok(!asked.includes(recent), 'an operation within the grace is not looked up');
    now += 100;
    assert.equal(await reconciler.reconcileOnce(), 1, 'the recent one, once past the grace');
    await reconciler.stop();
    await store.close();
  });

  test('a queue that cannot be asked fails nothing; the pass resolves and the next one tries again', async () => {
    const store = new SqliteOperationStore(':memory:');
    await store.createOperation({
      id: 'op',
      status: 'running',
      deployment: 'dall-e-2',
      request: {},
      created: 1,
      expires: 99999,
      updated: 1,
      result: null,
      error: null,
    });
    const warnings: string[] = [];
    const reconciler = new OperationReconciler({
      store,
      jobState: () => Promise.reject(new Error('Redis is away')),
      graceSeconds: 10,
      intervalSeconds: 3600,
      log: { info() {}, warn: (_o: object, message: string) => warnings.push(message) },
      now: () => 1000,
    });
    assert.equal(await reconciler.reconcileOnce(), 0);
    assert.equal((await store.getOperation('op'))?.status, 'running');
    assert.equal(warnings.length, 1);
    await store.close();
  });
});
