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
  const queue = new InProcessQueue<number, number>({
    concurrency: 1,
    maxWaiting: 1,
    jobTimeoutSeconds: 0,
    onStart: (job) => started.push(job),
  });
  queue.process(async (ms) => (await sleep(ms), ms));
  const first = await queue.add('first', 50);
  const second = await queue.add('second', 0);
  await Promise.all([first.finished, second.finished]);
  assert.deepEqual(
    started.map((s) => s.id),
    ['first', 'second'],
  );
  assert.ok(started[0]!.waitedMs < 40, `the first started at once (${started[0]!.waitedMs} ms)`);
  assert.ok(started[1]!.waitedMs >= 45, `the second waited for the first (${started[1]!.waitedMs} ms)`);
  await queue.close();
});

test('retry-after comes from the measured mean job duration × the jobs ahead / concurrency, clamped to [1, 59]', async () => {
  let clock = 0; // milliseconds, moved by the test only
  const queue = new InProcessQueue<string, string>({
    concurrency: 2,
    maxWaiting: 4,
    jobTimeoutSeconds: 0,
    estimatedJobSeconds: 2,
    now: () => clock,
  });
  const gates = new Map<string, () => void>();
  queue.process((id) => new Promise((resolve) => gates.set(id, () => resolve(id))));
  const fill = async (prefix: string) => {
    const jobs = [];
    for (let i = 0; i < 6; i++) jobs.push((await queue.add(`${prefix}${i}`, `${prefix}${i}`)).finished);
    return jobs;
  };
  const refusal = async () => {
    const error = await queue.add('one-more', 'one-more').then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(error && typeof error === 'object' && 'retryAfterSeconds' in error, 'the full queue refuses');
    return (error as { retryAfterSeconds: number }).retryAfterSeconds;
  };
  /** Let the running jobs finish, each having taken `ms` of the fake clock, until all are done. */
  const drain = async (jobs: Promise<string>[], ms: number) => {
    for (let done = 0; done < jobs.length;) {
      clock += ms;
      const running = [...gates.entries()];
      gates.clear();
      for (const [, finish] of running) finish();
      done += running.length;
      await Promise.all(jobs.slice(0, done));
    }
  };

  // Nothing measured yet: the configured guess, 6 jobs ahead × 2 s / 2 workers.
  let jobs = await fill('a');
  assert.equal(await refusal(), 6);
  // Jobs of 250 ms: 6 × 0.25 / 2 = 0.75 → 1 s, the floor.
  await drain(jobs, 250);
  jobs = await fill('b');
  assert.equal(await refusal(), 1);
  // Jobs of 3 s: the mean moves towards 3 s, so the answer grows but does not jump to 3 s at once.
  await drain(jobs, 3000);
  jobs = await fill('c');
  const after3s = await refusal();
  assert.ok(after3s > 1 && after3s < 9, `between the old and new mean: ${after3s}`);
  // Jobs of 100 s: capped at 59, where the openai client still honours it.
  for (let i = 0; i < 5; i++) {
    await drain(jobs, 100_000);
    jobs = await fill(`d${i}`);
  }
  assert.equal(await refusal(), 59);
  await drain(jobs, 1);
  await queue.close();
});
