import assert from 'node:assert/strict';
import { test } from 'node:test';

import { InProcessQueue } from '../../src/jobs/in-process-queue.ts';
import type { JobData, JobResult } from '../../src/jobs/job-contract.ts';
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
