import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { InProcessQueue } from '../../src/jobs/in-process-queue.ts';
import { type JobData, JobFailedError, type JobResult, QueueFullError } from '../../src/jobs/job-contract.ts';
import { generationRequest } from '../helpers/requests.ts';
import { jobQueueContract } from './queue.contract.ts';

// One object is both sides, as in the embedded server.
jobQueueContract('InProcessQueue', (options) => {
  const queue = new InProcessQueue(options);
  return { producer: queue, consumer: queue, close: () => queue.close() };
});

const DEPLOYMENT = 'dall-e-3';
/** A job whose prompt carries `value` (a name, or milliseconds to take). */
const job = (value: string | number): JobData => ({
  request: generationRequest({ deployment: DEPLOYMENT, prompt: String(value) }),
  operationId: null,
});
const result = (data: JobData): JobResult => ({ created: 1, revisedPrompt: data.request.prompt, items: [] });

test('onStart reports each job as it starts, with the time it waited since admission', async () => {
  const started: Array<{ id: string; waitedMs: number }> = [];
  const queue = new InProcessQueue({
    concurrency: 1,
    maxWaiting: 1,
    jobTimeoutSeconds: 0,
    onStart: (job) => started.push(job),
  });
  queue.process([DEPLOYMENT], async (data) => (await sleep(Number(data.request.prompt)), result(data)));
  const first = await queue.add('first', job(50));
  const second = await queue.add('second', job(0));
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
  const queue = new InProcessQueue({
    concurrency: 2,
    maxWaiting: 4,
    jobTimeoutSeconds: 0,
    estimatedJobSeconds: 2,
    now: () => clock,
  });
  const gates = new Map<string, () => void>();
  queue.process([DEPLOYMENT], (data, { id }) => new Promise((resolve) => gates.set(id, () => resolve(result(data)))));
  const fill = async (prefix: string) => {
    const jobs = [];
    for (let i = 0; i < 6; i++) jobs.push((await queue.add(`${prefix}${i}`, job(`${prefix}${i}`))).finished);
    return jobs;
  };
  const refusal = async () => {
    const error = await queue.add('one-more', job('one-more')).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(error instanceof QueueFullError, 'the full queue refuses');
    assert.equal(await queue.retryAfterSeconds(DEPLOYMENT), error.retryAfterSeconds);
    return error.retryAfterSeconds;
  };
  /** Let the running jobs finish, each having taken `ms` of the fake clock, until all are done. */
  const drain = async (jobs: Promise<JobResult>[], ms: number) => {
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

test('retry-after is measured per deployment: slow jobs of one do not lengthen the wait for another', async () => {
  let clock = 0;
  const queue = new InProcessQueue({ concurrency: 1, maxWaiting: 0, jobTimeoutSeconds: 0, now: () => clock });
  const gates = new Map<string, () => void>();
  queue.process(
    ['slow', 'fast'],
    (data, { id }) => new Promise((resolve) => gates.set(id, () => resolve(result(data)))),
  );
  const run = async (deployment: string, ms: number) => {
    const { finished } = await queue.add(`${deployment}-${ms}`, {
      request: generationRequest({ deployment }),
      operationId: null,
    });
    clock += ms;
    gates.get(`${deployment}-${ms}`)!();
    await finished;
  };
  await run('slow', 40_000);
  await run('fast', 1_000);
  const { finished } = await queue.add('holder', {
    request: generationRequest({ deployment: 'slow' }),
    operationId: null,
  });
  // One slow job running: 40 s for "slow"; "fast" has none of its own ahead, so the floor.
  assert.equal(await queue.retryAfterSeconds('slow'), 40);
  assert.equal(await queue.retryAfterSeconds('fast'), 1);
  gates.get('holder')!();
  await finished;
  await queue.close();
});

test('the processor gets a JSON copy of the job, as it would from another process', async () => {
  const queue = new InProcessQueue({ concurrency: 1, maxWaiting: 1, jobTimeoutSeconds: 0 });
  let seen: JobData | null = null;
  queue.process([DEPLOYMENT], async (data) => {
    seen = data;
    return result(data);
  });
  const sent = job('copied');
  const { finished } = await queue.add('copy', sent);
  await finished;
  assert.notEqual(seen, sent, 'the processor gets a copy, as it would from another process');
  assert.deepEqual(seen, sent);
  await queue.close();
});

test('a job whose signal fired before it was added never runs, and its caller fails as cancelled', async () => {
  const queue = new InProcessQueue({ concurrency: 1, maxWaiting: 1, jobTimeoutSeconds: 0 });
  let runs = 0;
  queue.process([DEPLOYMENT], async (data) => {
    runs++;
    return result(data);
  });
  const controller = new AbortController();
  controller.abort();
  const { finished } = await queue.add('gone', job('gone'), { signal: controller.signal });
  await assert.rejects(finished, (error: unknown) => error instanceof JobFailedError && error.failure.status === 499);
  assert.equal(runs, 0);
  assert.deepEqual(await queue.counts(DEPLOYMENT), { waiting: 0, active: 0 });
  await queue.close();
});
