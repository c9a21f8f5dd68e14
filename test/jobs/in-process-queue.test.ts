import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InProcessQueue } from '../../src/jobs/in-process-queue.ts';
import { jobQueueContract } from './queue.contract.ts';

jobQueueContract(
  'InProcessQueue',
  () => new InProcessQueue<string, string>({ concurrency: 1, maxWaiting: 1, jobTimeoutSeconds: 1 }),
);

test('onStart reports each job as it starts, with the time it waited since admission', async () => {
  const started: Array<{ id: string; waitedMs: number }> = [];
  const queue = new InProcessQueue<number, number>({ concurrency: 1, maxWaiting: 1, jobTimeoutSeconds: 0, onStart: (job) => started.push(job) });
  queue.process(async (ms) => (await sleep(ms), ms));
  const first = await queue.add('first', 50);
  const second = await queue.add('second', 0);
  await Promise.all([first.finished, second.finished]);
  assert.deepEqual(started.map((s) => s.id), ['first', 'second']);
  assert.ok(started[0]!.waitedMs < 40, `the first started at once (${started[0]!.waitedMs} ms)`);
  assert.ok(started[1]!.waitedMs >= 45, `the second waited for the first (${started[1]!.waitedMs} ms)`);
  await queue.close();
});
