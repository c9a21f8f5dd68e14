// What API nodes need of the producer for DALL-E 2 operations (docs/scale-out.md, "Operations across
// processes"): a job's state as BullMQ holds it, and detached jobs that outlive the producer that
// admitted them. On a real Redis started by scripts/services/redis.sh.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { BullmqConsumer } from '../../src/jobs/bullmq-consumer.ts';
import { BullmqProducer } from '../../src/jobs/bullmq-queue.ts';
import type { JobData, JobResult } from '../../src/jobs/job-contract.ts';
import { generationRequest } from '../helpers/requests.ts';
import { reportMissingService, startService } from '../helpers/services.ts';

const DEPLOYMENT = 'dall-e-2';
const data = (operationId: string): JobData => ({
  request: generationRequest({ prompt: 'a kite', deployment: DEPLOYMENT }),
  operationId,
});
const result: JobResult = { created: 1, revisedPrompt: null, items: [] };

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const started = startService('redis');
if (!started.ok) {
  reportMissingService('BullMQ job state', started.missing);
} else {
  const server = started.service;
  after(() => server.stop());
  const quiet = () => {};

  test('jobState: missing before it is added, waiting, active, then completed or failed', async () => {
    const prefix = 'jobstate';
    const producer = new BullmqProducer({ redis: server.url, prefix, maxWaiting: 4, onError: quiet });
    assert.equal(await producer.jobState(DEPLOYMENT, 'nothing'), 'missing');
    const first = await producer.add('op-1', data('op-1'), { detached: true });
    assert.equal(await producer.jobState(DEPLOYMENT, 'op-1'), 'waiting');
    let release: (() => void) | null = null;
    const consumer = new BullmqConsumer({
      redis: server.url,
      prefix,
      concurrency: 1,
      jobTimeoutSeconds: 0,
      onError: quiet,
    });
    consumer.process([DEPLOYMENT], async (job) => {
      if (job.operationId === 'op-2') throw new Error('model exploded');
      await new Promise<void>((r) => (release = r));
      return result;
    });
    await until(async () => release !== null, 'the job to start');
    assert.equal(await producer.jobState(DEPLOYMENT, 'op-1'), 'active');
    release!();
    await first.finished;
    assert.equal(await producer.jobState(DEPLOYMENT, 'op-1'), 'completed');
    const second = await producer.add('op-2', data('op-2'), { detached: true });
    await assert.rejects(second.finished);
    assert.equal(await producer.jobState(DEPLOYMENT, 'op-2'), 'failed');
    await consumer.close();
    await producer.close();
  });

  test('close() lets detached jobs be: not failed, not cancelled; another producer sees them finish', async () => {
    const prefix = 'detached';
    const producer = new BullmqProducer({ redis: server.url, prefix, maxWaiting: 4, onError: quiet });
    const detached = await producer.add('op-d', data('op-d'), { detached: true });
    const attached = await producer.add('sync-1', data('sync-1'));
    let settled = false;
    detached.finished.then(
      () => (settled = true),
      () => (settled = true),
    );
    await producer.close();
    await assert.rejects(attached.finished, /shutting down/);
    const other = new BullmqProducer({ redis: server.url, prefix, maxWaiting: 4, onError: quiet });
    assert.equal(await other.jobState(DEPLOYMENT, 'op-d'), 'waiting', 'still queued after its producer closed');
    assert.equal(await other.jobState(DEPLOYMENT, 'sync-1'), 'missing', 'the attached one was taken off the queue');
    const consumer = new BullmqConsumer({
      redis: server.url,
      prefix,
      concurrency: 1,
      jobTimeoutSeconds: 0,
      onError: quiet,
    });
    consumer.process([DEPLOYMENT], async () => result);
    await until(async () => (await other.jobState(DEPLOYMENT, 'op-d')) === 'completed', 'the detached job to run');
    assert.equal(settled, false, 'the closed producer no longer reports it');
    await consumer.close();
    await other.close();
  });
}
