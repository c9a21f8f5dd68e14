// The job queue on Redis (BullMQ) against a real Redis started by scripts/services/redis.sh. Each test
// uses its own key prefix on the one server. Lock and stall timings are short so that recovery
// tests run quickly; the tests wait for events (a job starting, a count reaching a value), never
// for a length of time.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, test } from 'node:test';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { ApiError, errors } from '../../src/contract/errors.ts';
import { EngineError } from '../../src/engines/engine.ts';
import { BullmqConsumer, type BullmqConsumerOptions } from '../../src/jobs/bullmq-consumer.ts';
import {
  BullmqProducer,
  type BullmqProducerOptions,
  decodeFailure,
  encodeFailure,
  fromBullId,
  toBullId,
} from '../../src/jobs/bullmq-queue.ts';
import {
  type JobData,
  JobFailedError,
  type JobProcessor,
  type JobResult,
  QueueFullError,
} from '../../src/jobs/job-contract.ts';
import { JobCanceledError, JobTimeoutError, QueueClosedError, toJobFailure } from '../../src/jobs/job-failure.ts';
import { generationRequest } from '../helpers/requests.ts';
import { reportMissingService, startService } from '../helpers/services.ts';
import { jobQueueContract } from './queue.contract.ts';

const DEPLOYMENT = 'dall-e-3';
const FIXTURE = resolve(import.meta.dirname, 'fixtures/bullmq-worker.ts');

function jobData(prompt = 'a lighthouse', deployment = DEPLOYMENT): JobData {
  return { request: generationRequest({ prompt, deployment }), operationId: null };
}

function result(text: string): JobResult {
  return { created: 1_700_000_000, revisedPrompt: text, items: [] };
}

/** Polls until `condition` holds; the limit only stops a hung test, it is not what is tested. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** Rejects with the signal's reason when it fires (a job that only ends when aborted). */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

async function failureOf(promise: Promise<unknown>): Promise<JobFailedError> {
  const error = await promise.then(
    () => assert.fail('expected the job to fail'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof JobFailedError, `expected a JobFailedError, got ${String(error)}`);
  return error;
}

test('bullmq: failures cross processes as catalogue errors, never as classes', () => {
  const invalid = errors.invalidParameter('prompt', 'too long');
  assert.deepEqual(decodeFailure(encodeFailure(toJobFailure(invalid, 'r1')), 'r1'), {
    status: 400,
    error: invalid.toWire().error,
  });
  assert.equal(toJobFailure(new JobTimeoutError(), 'r1').error.code, 'Timeout');
  assert.equal(toJobFailure(new EngineError('the model broke'), 'r1').error.message.includes('the model broke'), true);
  const internal = toJobFailure(new Error('secret internals at /srv/x'), 'r1');
  assert.equal(internal.status, 500);
  assert.ok(!internal.error.message.includes('secret'));
  // BullMQ's own reasons, and anything malformed behind the marker, become a generation failure.
  for (const reason of [
    'job stalled more than allowable limit',
    'easel-job-failure:{not json',
    'easel-job-failure:{"status":"500"}',
    'easel-job-failure:null',
    undefined,
  ]) {
    const failure = decodeFailure(reason, 'r2');
    assert.equal(failure.status, 500, String(reason));
    assert.equal(failure.error.code, 'InternalServerError');
  }
});

test('bullmq: job ids round-trip through the ids BullMQ accepts (no integers, no ":")', () => {
  for (const id of ['42', 'req:1', 'ünï/cödé %', '']) {
    const bullId = toBullId(id);
    assert.ok(!bullId.includes(':') && !/^\d+$/.test(bullId), bullId);
    assert.equal(fromBullId(bullId), id);
  }
});

test('bullmq: options out of range are refused', () => {
  assert.throws(() => new BullmqProducer({ redis: 'redis://127.0.0.1:1', maxWaiting: -1 }), RangeError);
  assert.throws(() => new BullmqProducer({ redis: 'redis://127.0.0.1:1', maxWaiting: 1, prefix: 'a:b' }), RangeError);
  assert.throws(() => new BullmqProducer({ redis: 'redis://127.0.0.1:1', maxWaiting: 1, prefix: '' }), RangeError);
  const consumer = { redis: 'redis://127.0.0.1:1', jobTimeoutSeconds: 0 };
  assert.throws(() => new BullmqConsumer({ ...consumer, concurrency: 0 }), RangeError);
  assert.throws(() => new BullmqConsumer({ ...consumer, concurrency: 1, attempts: 0 }), RangeError);
});

const started = startService('redis');
if (!started.ok) {
  reportMissingService('BullMQ job queue', started.missing);
} else {
  const server = started.service;
  after(() => server.stop());
  let prefixes = 0;
  const quiet = () => {};
  const open: { close(): Promise<void> }[] = [];
  after(async () => {
    await Promise.allSettled(open.map((o) => o.close()));
  });

  function makeProducer(prefix: string, options: Partial<BullmqProducerOptions> = {}) {
    const producer = new BullmqProducer({ redis: server.url, prefix, maxWaiting: 4, onError: quiet, ...options });
    open.push(producer);
    return producer;
  }
  function makeConsumer(prefix: string, processor: JobProcessor, options: Partial<BullmqConsumerOptions> = {}) {
    const consumer = new BullmqConsumer({
      redis: server.url,
      prefix,
      concurrency: 1,
      jobTimeoutSeconds: 0,
      lockDurationMs: 1000,
      stalledIntervalMs: 300,
      onError: quiet,
      ...options,
    });
    consumer.process([DEPLOYMENT], processor);
    open.push(consumer);
    return consumer;
  }
  const fresh = () => `easeltest${prefixes++}`;

  jobQueueContract('bullmq', ({ concurrency, maxWaiting, jobTimeoutSeconds }) => {
    const prefix = fresh();
    const producer = new BullmqProducer({ redis: server.url, prefix, maxWaiting, onError: quiet });
    const consumer = new BullmqConsumer({
      redis: server.url,
      prefix,
      concurrency,
      jobTimeoutSeconds,
      lockDurationMs: 1000,
      stalledIntervalMs: 300,
      onError: quiet,
    });
    return { producer, consumer, close: () => Promise.all([consumer.close(), producer.close()]).then(() => {}) };
  });

  test('bullmq: a job runs on a consumer; its progress, in order, and result reach the producer', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const seen: { id: string; attempt: number }[] = [];
    const consumer = makeConsumer(prefix, async (data, context) => {
      seen.push({ id: context.id, attempt: context.attempt });
      for (let step = 1; step <= 20; step++) context.reportProgress({ step, totalSteps: 20 });
      return result(data.request.prompt);
    });
    const steps: number[] = [];
    const { finished } = await producer.add('req:1', jobData('hello'), { onProgress: (p) => steps.push(p.step) });
    assert.deepEqual(await finished, result('hello'));
    assert.deepEqual(
      steps,
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(seen, [{ id: 'req:1', attempt: 1 }]);
    assert.deepEqual(await producer.counts(DEPLOYMENT), { waiting: 0, active: 0 });
    assert.equal(consumer.running(), 0);
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: a failing job rejects only its own caller, with the catalogue error the worker raised', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const consumer = makeConsumer(prefix, async (data) => {
      if (data.request.prompt === 'invalid') throw errors.invalidParameter('prompt', 'not allowed');
      if (data.request.prompt === 'boom') throw new Error('secret internals');
      return result(data.request.prompt);
    });
    const bad = await producer.add('1', jobData('invalid'));
    const boom = await producer.add('2', jobData('boom'));
    const good = await producer.add('3', jobData('good'));
    const invalid = await failureOf(bad.finished);
    assert.equal(invalid.failure.status, 400);
    assert.deepEqual(invalid.failure.error, errors.invalidParameter('prompt', 'not allowed').toWire().error);
    const internal = await failureOf(boom.finished);
    assert.equal(internal.failure.error.code, 'InternalServerError');
    assert.ok(!internal.failure.error.message.includes('secret'));
    assert.deepEqual(await good.finished, result('good'));
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: a full queue refuses with QueueFullError and admits nothing', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix, { maxWaiting: 1 });
    const g = gate();
    const startedJobs: string[] = [];
    const consumer = makeConsumer(prefix, async (data) => {
      startedJobs.push(data.request.prompt);
      await g.opened;
      return result(data.request.prompt);
    });
    const running = await producer.add('1', jobData('one'));
    await until(() => startedJobs.length === 1, 'the first job to start');
    const waiting = await producer.add('2', jobData('two'));
    const refused = await producer.add('3', jobData('three')).catch((e: unknown) => e);
    assert.ok(refused instanceof QueueFullError);
    assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 59);
    assert.deepEqual(await producer.counts(DEPLOYMENT), { waiting: 1, active: 1 });
    g.open();
    assert.deepEqual([await running.finished, await waiting.finished], [result('one'), result('two')]);
    assert.deepEqual(startedJobs, ['one', 'two']);
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: two producers racing for the last slots of a nearly full queue admit exactly up to the limit', async () => {
    const prefix = fresh();
    const a = makeProducer(prefix, { maxWaiting: 5 });
    const b = makeProducer(prefix, { maxWaiting: 5 });
    for (let i = 0; i < 4; i++) await a.add(`fill-${i}`, jobData());
    // No worker: the jobs stay waiting. Twenty adds from two nodes race for the one slot left.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).add(`race-${i}`, jobData())),
    );
    const admitted = outcomes.filter((o) => o.status === 'fulfilled');
    assert.equal(admitted.length, 1);
    for (const o of outcomes) if (o.status === 'rejected') assert.ok(o.reason instanceof QueueFullError);
    assert.deepEqual(await b.counts(DEPLOYMENT), { waiting: 5, active: 0 });
    await Promise.all([a.close(), b.close()]);
    assert.deepEqual(
      (await makeProducer(prefix).counts(DEPLOYMENT)).waiting,
      0,
      'closed producers take their jobs off',
    );
  });

  test('bullmq: a job id already in the queue is refused', async () => {
    const prefix = fresh();
    const a = makeProducer(prefix);
    const b = makeProducer(prefix);
    await a.add('same', jobData());
    await assert.rejects(b.add('same', jobData()), /already exists/);
    await assert.rejects(a.add('same', jobData()), /already waited for/);
    await Promise.all([a.close(), b.close()]);
  });

  test('bullmq: retry-after is the jobs ahead times the mean job time over the workers, measured once jobs ran', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix, { maxWaiting: 3, estimatedJobSeconds: 10 });
    for (let i = 0; i < 3; i++) await producer.add(`w${i}`, jobData());
    const refused = await producer.add('over', jobData()).catch((e: unknown) => e);
    assert.ok(refused instanceof QueueFullError);
    assert.equal(refused.retryAfterSeconds, 30); // 3 ahead × 10 s (the guess) / 1
    assert.equal(await producer.retryAfterSeconds(DEPLOYMENT), 30);
    const consumer = makeConsumer(prefix, async () => result('quick'));
    await until(async () => (await producer.counts(DEPLOYMENT)).waiting === 0, 'the jobs to run');
    await consumer.close(); // its slots leave the worker list
    for (let i = 0; i < 3; i++) await producer.add(`v${i}`, jobData());
    // 3 ahead × a measured mean of milliseconds: the guess no longer counts.
    assert.equal(await producer.retryAfterSeconds(DEPLOYMENT), 1);
    await producer.close();
  });

  test('bullmq: a cancelled job is removed while it waits and aborted in the worker running it', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const startedJobs: string[] = [];
    const reasons: unknown[] = [];
    const consumer = makeConsumer(prefix, async (data, context) => {
      startedJobs.push(data.request.prompt);
      if (data.request.prompt !== 'busy') return result(data.request.prompt);
      return untilAborted(context.signal).catch((reason: unknown) => {
        reasons.push(reason);
        throw reason;
      });
    });
    const runningClient = new AbortController();
    const waitingClient = new AbortController();
    const running = await producer.add('r', jobData('busy'), { signal: runningClient.signal });
    await until(() => startedJobs.length === 1, 'the busy job to start');
    const waiting = await producer.add('w', jobData('waits'), { signal: waitingClient.signal });
    waitingClient.abort(new Error('client went away'));
    assert.equal((await failureOf(waiting.finished)).failure.error.code, 'ClientClosedRequest');
    await until(async () => (await producer.counts(DEPLOYMENT)).waiting === 0, 'the waiting job to be removed');
    runningClient.abort(new Error('client went away too'));
    assert.equal((await failureOf(running.finished)).failure.error.code, 'ClientClosedRequest');
    await until(() => reasons.length === 1, 'the running job to be aborted');
    assert.ok(reasons[0] instanceof JobCanceledError);
    await until(async () => (await producer.counts(DEPLOYMENT)).active === 0, 'nothing to stay active');
    // The slot is free again, and the removed job never ran.
    assert.deepEqual(await (await producer.add('next', jobData('next'))).finished, result('next'));
    assert.deepEqual(startedJobs, ['busy', 'next']);
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: messages on the cancellation channel that are not ours, or name no job here, change nothing', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const g = gate();
    let startedJobs = 0;
    const consumer = makeConsumer(prefix, async (data, context) => {
      startedJobs++;
      await g.opened;
      assert.equal(context.signal.aborted, false);
      return result(data.request.prompt);
    });
    const { finished } = await producer.add('kept', jobData('kept'));
    await until(() => startedJobs === 1, 'the job to start');
    const redis = new Redis(server.url);
    try {
      const subscribers = async () => ((await redis.pubsub('NUMSUB', `${prefix}:cancel`)) as [string, number])[1];
      await until(async () => (await subscribers()) === 1, 'the consumer to subscribe');
      for (const message of ['not json', '{}', 'null', JSON.stringify({ deployment: DEPLOYMENT, jobId: 'jother' })])
        await redis.publish(`${prefix}:cancel`, message);
      await redis.ping(); // the messages went out before this answer
    } finally {
      redis.disconnect();
    }
    g.open();
    assert.deepEqual(await finished, result('kept'));
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: process() needs deployments and is called once', async () => {
    const consumer = new BullmqConsumer({ redis: server.url, prefix: fresh(), concurrency: 1, jobTimeoutSeconds: 0 });
    open.push(consumer);
    assert.throws(() => consumer.process([], async () => result('x')), RangeError);
    consumer.process([DEPLOYMENT], async () => result('x'));
    assert.throws(() => consumer.process([DEPLOYMENT], async () => result('x')), /once/);
    await consumer.close();
  });

  test('bullmq: a job past jobTimeoutSeconds is aborted and fails as generation-timed-out', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const reasons: unknown[] = [];
    const consumer = makeConsumer(
      prefix,
      (_data, context) =>
        untilAborted(context.signal).catch((reason: unknown) => {
          reasons.push(reason);
          throw reason;
        }),
      { jobTimeoutSeconds: 1 },
    );
    const { finished } = await producer.add('slow', jobData());
    const failed = await failureOf(finished);
    assert.equal(failed.failure.status, 500);
    assert.equal(failed.failure.error.code, errors.generationTimedOut().code);
    assert.ok(reasons[0] instanceof JobTimeoutError);
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: a closing consumer lets running jobs finish within the grace period', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const g = gate();
    let startedJobs = 0;
    const consumer = makeConsumer(prefix, async () => {
      startedJobs++;
      await g.opened;
      return result('in time');
    });
    const { finished } = await producer.add('1', jobData());
    await until(() => startedJobs === 1, 'the job to start');
    const closed = consumer.close({ graceSeconds: 60 });
    g.open();
    await closed;
    assert.deepEqual(await finished, result('in time'));
    await producer.close();
  });

  test('bullmq: a job aborted by a consumer shutting down goes back to waiting when another worker serves its deployment', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const reasons: unknown[] = [];
    const first = makeConsumer(prefix, (_data, context) =>
      untilAborted(context.signal).catch((reason: unknown) => {
        reasons.push(reason);
        throw reason;
      }),
    );
    let settled = false;
    const { finished } = await producer.add('moved', jobData('moved'));
    void finished.finally(() => (settled = true)).catch(() => {});
    await until(() => first.running() === 1, 'the job to start');
    // A second worker, busy with a job of its own, serves the deployment too.
    const g = gate();
    const attempts: number[] = [];
    const second = makeConsumer(prefix, async (data, context) => {
      attempts.push(context.attempt);
      if (data.request.prompt === 'blocker') await g.opened;
      return result(data.request.prompt);
    });
    const blocker = await producer.add('blocker', jobData('blocker'));
    await until(() => second.running() === 1, 'the second worker to be busy');
    await first.close({ graceSeconds: 0 });
    assert.ok(reasons[0] instanceof QueueClosedError);
    assert.deepEqual(await producer.counts(DEPLOYMENT), { waiting: 1, active: 1 });
    assert.equal(settled, false, 'the client still waits');
    g.open();
    assert.deepEqual(await blocker.finished, result('blocker'));
    assert.deepEqual(await finished, result('moved'));
    assert.deepEqual(attempts, [1, 2]);
    await Promise.all([producer.close(), second.close()]);
  });

  test('bullmq: one consumer serving several deployments runs `concurrency` jobs in all, oldest first', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const g = gate();
    const order: string[] = [];
    const consumer = new BullmqConsumer({ redis: server.url, prefix, concurrency: 1, jobTimeoutSeconds: 0 });
    open.push(consumer);
    consumer.process(['a', 'b'], async (data) => {
      order.push(data.request.prompt);
      await g.opened;
      return result(data.request.prompt);
    });
    const jobs = [await producer.add('1', jobData('a1', 'a'))];
    await until(() => order.length === 1, 'the first job to start');
    for (const [name, deployment] of [
      ['b1', 'b'],
      ['a2', 'a'],
      ['b2', 'b'],
    ] as const)
      jobs.push(await producer.add(name, jobData(name, deployment)));
    assert.deepEqual(await producer.counts('b'), { waiting: 2, active: 0 });
    g.open();
    await Promise.all(jobs.map((j) => j.finished));
    assert.deepEqual(order, ['a1', 'b1', 'a2', 'b2']);
    await Promise.all([producer.close(), consumer.close()]);
  });

  test('bullmq: an idle consumer takes each job with one move and does not wake again for nothing', async (t) => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    makeConsumer(prefix, async (data) => result(data.request.prompt), { blockSeconds: 30 });
    await producer.add('warm-up', jobData('warm-up')).then((j) => j.finished);
    // Every command the consumer sends for this queue, as Redis sees it.
    const redis = new Redis(server.url);
    const monitor = await redis.monitor();
    t.after(() => {
      monitor.disconnect();
      redis.disconnect();
    });
    const seen: string[] = [];
    const waitKey = `${prefix}:q:${DEPLOYMENT}:wait`;
    const markerKey = `${prefix}:q:${DEPLOYMENT}:marker`;
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = args[0]!.toLowerCase();
      if (command === 'bzpopmin' && args.includes(markerKey)) seen.push('wait');
      // BullMQ's moveToActive: its script's 11 keys start with the wait list.
      if (command === 'evalsha' && args[2] === '11' && args[3] === waitKey) seen.push('take');
    });
    for (let i = 0; i < 3; i++) await producer.add(`job:${i}`, jobData(`p${i}`)).then((j) => j.finished);
    await until(() => seen.length >= 6, 'the consumer to wait again after the last job');
    await new Promise((r) => setTimeout(r, 200)); // anything more would show up now
    // Each job: one move takes it, then one wait until the next job's marker ends it. The marker BullMQ
    // leaves as a job is taken (for another worker to look) is cleared, not woken on: before, each job
    // cost three moves and two waits.
    assert.deepEqual(seen, ['take', 'wait', 'take', 'wait', 'take', 'wait']);
    assert.equal(await redis.exists(markerKey), 0);
  });

  test('bullmq: a queue paused from outside easel holds its jobs back without making the consumer spin', async (t) => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const ran: string[] = [];
    makeConsumer(prefix, async (data) => (ran.push(data.request.prompt), result(data.request.prompt)), {
      blockSeconds: 1,
    });
    await producer.add('warm-up', jobData('warm-up')).then((j) => j.finished);
    const queue = new Queue(encodeURIComponent(DEPLOYMENT), { connection: { url: server.url }, prefix: `${prefix}:q` });
    t.after(() => queue.close());
    await queue.pause();
    const redis = new Redis(server.url);
    const monitor = await redis.monitor();
    t.after(() => {
      monitor.disconnect();
      redis.disconnect();
    });
    let takes = 0;
    const waitKey = `${prefix}:q:${DEPLOYMENT}:wait`;
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]!.toLowerCase() === 'evalsha' && args[2] === '11' && args[3] === waitKey) takes++;
    });
    const { finished } = await producer.add('held', jobData('held'));
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(ran, ['warm-up']);
    assert.ok(takes <= 6, `${takes} tries to take a job from a paused queue in 1.5 s`);
    await queue.resume();
    assert.deepEqual(await finished, result('held'));
  });

  test('bullmq: a closing producer waits the grace period for the results of its jobs', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const g = gate();
    const consumer = makeConsumer(prefix, async (data) => {
      await g.opened;
      return result(data.request.prompt);
    });
    const { finished } = await producer.add('graced', jobData('graced'));
    await until(() => consumer.running() === 1, 'the job to start');
    const closed = producer.close({ graceSeconds: 60 });
    g.open();
    await closed;
    assert.deepEqual(await finished, result('graced'));
    await consumer.close();
  });

  test('bullmq: a closing producer fails the jobs it waits for with a shutdown error and takes them off', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const { finished } = await producer.add('orphan', jobData());
    await producer.close();
    const failed = await failureOf(finished);
    assert.equal(failed.failure.status, 503);
    assert.equal(failed.failure.error.code, errors.shuttingDown('x').code);
    assert.equal((await failureOf(producer.add('late', jobData()))).failure.status, 503);
    assert.deepEqual(await makeProducer(prefix).counts(DEPLOYMENT), { waiting: 0, active: 0 });
  });

  test('bullmq: the event stream stays bounded by eventsMaxLen', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix, { eventsMaxLen: 10 });
    const consumer = makeConsumer(prefix, async (_data, context) => {
      for (let step = 1; step <= 400; step++) context.reportProgress({ step, totalSteps: 400 });
      return result('chatty');
    });
    let last = 0;
    const { finished } = await producer.add('chatty', jobData(), { onProgress: (p) => (last = p.step) });
    await finished;
    assert.equal(last, 400);
    const redis = new Redis(server.url);
    try {
      // Trimming is approximate (whole stream nodes of up to 100 entries), never unbounded.
      const length = await redis.xlen(`${prefix}:q:${DEPLOYMENT}:events`);
      assert.ok(length < 200, `the stream holds ${length} events`);
    } finally {
      redis.disconnect();
    }
    await Promise.all([producer.close(), consumer.close()]);
  });

  /** A worker process that takes jobs and never finishes them; resolves once it started one. */
  function spawnWorker(prefix: string, attempts: number) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', FIXTURE, server.url, prefix, DEPLOYMENT, '1000', '300', String(attempts)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    const startedJob = new Promise<string>((resolveStarted, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split('\n').find((l) => l.startsWith('started '));
        if (line) resolveStarted(line);
      });
      child.on('exit', (code) => reject(new Error(`the worker process exited (${code}) before starting a job`)));
    });
    return { child, startedJob };
  }

  async function kill(child: ChildProcess): Promise<void> {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  test('bullmq: a worker killed with SIGKILL mid-job loses the job to another worker, which finishes it', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const { child, startedJob } = spawnWorker(prefix, 2);
    const { finished } = await producer.add('survivor', jobData('survivor'));
    assert.equal(await startedJob, 'started survivor 1');
    await kill(child);
    assert.deepEqual(await producer.counts(DEPLOYMENT), { waiting: 0, active: 1 }, 'held by the dead worker');
    const attempts: number[] = [];
    const rescuer = makeConsumer(prefix, async (data, context) => {
      attempts.push(context.attempt);
      return result(data.request.prompt);
    });
    assert.deepEqual(await finished, result('survivor'));
    assert.deepEqual(attempts, [2]);
    assert.deepEqual(await producer.counts(DEPLOYMENT), { waiting: 0, active: 0 });
    await Promise.all([producer.close(), rescuer.close()]);
  });

  test('bullmq: a job whose workers keep dying fails after the configured attempts, never stuck active', async () => {
    const prefix = fresh();
    const producer = makeProducer(prefix);
    const { child, startedJob } = spawnWorker(prefix, 1);
    const { finished } = await producer.add('doomed', jobData());
    await startedJob;
    await kill(child);
    let ran = 0;
    const other = makeConsumer(
      prefix,
      async () => {
        ran++;
        return result('never');
      },
      { attempts: 1 },
    );
    const failed = await failureOf(finished);
    assert.equal(failed.failure.status, 500);
    assert.equal(failed.failure.error.code, 'InternalServerError');
    assert.equal(ran, 0);
    assert.deepEqual(await producer.counts(DEPLOYMENT), { waiting: 0, active: 0 });
    await Promise.all([producer.close(), other.close()]);
  });

  // Last: it stops and restarts the server that the other tests share.
  test('bullmq: while Redis is down, add fails cleanly with a 503; everything recovers when it returns', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const prefix = fresh();
      const producer = makeProducer(prefix, { connectWaitMs: 200, reconcileIntervalMs: 200 });
      const consumer = makeConsumer(prefix, async (data) => result(data.request.prompt));
      assert.deepEqual(await (await producer.add('before', jobData('before'))).finished, result('before'));
      // A job no worker takes (another deployment) is still waited for when Redis goes.
      const lost = await producer.add('lost', jobData('lost', 'nobody-runs-this'));

      server.halt();
      const refused = await producer.add('during', jobData('during')).catch((e: unknown) => e);
      assert.ok(refused instanceof ApiError, String(refused));
      assert.equal(refused.status, 503);
      assert.equal(refused.code, errors.queueUnavailable().code);
      await assert.rejects(producer.counts(DEPLOYMENT), (e) => e instanceof ApiError && e.status === 503);

      server.resume(); // empty: the scripts keep nothing on disk
      let after: { finished: Promise<JobResult> } | undefined;
      await until(async () => {
        after = await producer.add('after', jobData('after')).catch(() => undefined);
        return after !== undefined;
      }, 'add to succeed again');
      assert.deepEqual(await after!.finished, result('after'));
      // The job Redis lost with its data fails as unavailable (503: the client may retry).
      const failed = await failureOf(lost.finished);
      assert.equal(failed.failure.status, 503);

      // Closing while Redis is away still ends, and fails the job still waited for as shutting down.
      const stuck = await producer.add('stuck', jobData('stuck', 'nobody-runs-this'));
      server.halt();
      await Promise.all([producer.close(), consumer.close()]);
      assert.equal((await failureOf(stuck.finished)).failure.error.code, 'ServiceUnavailable');
      server.resume();
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
}
