// The behaviour every job queue adapter must have: the job contract of src/jobs/job-contract.ts as
// the admitting side (JobProducer) and the running side (JobConsumer) see it. The in-process queue
// runs it now; a queue between processes runs the very same suite with its producer and consumer.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { errors } from '../../src/contract/errors.ts';
import {
  type JobConsumer,
  type JobContext,
  type JobData,
  JobFailedError,
  type JobProducer,
  type JobProgress,
  type JobResult,
  QueueFullError,
} from '../../src/jobs/job-contract.ts';
import { generationRequest } from '../helpers/requests.ts';

export interface QueueUnderTestOptions {
  /** Jobs the consumer runs at once. */
  concurrency: number;
  /** Jobs that may wait per deployment. */
  maxWaiting: number;
  /** 0 = no limit. */
  jobTimeoutSeconds: number;
}

export interface QueueUnderTest {
  producer: JobProducer;
  consumer: JobConsumer;
  /** Close both sides and whatever they hold (connections); called once at the end of each test. */
  close(): Promise<void>;
}

const A = 'deployment-a';
const B = 'deployment-b';

/** A job of `deployment` whose prompt names it, so the processor can tell jobs apart. */
function job(name: string, deployment = A): JobData {
  return { request: generationRequest({ deployment, prompt: name, responseFormat: 'b64_json' }), operationId: null };
}

/** What the processors below return: the job's name, so the caller can check it got its own result. */
function resultOf(data: JobData): JobResult {
  return { created: 1_700_000_000, revisedPrompt: data.request.prompt, items: [] };
}

/** A latch the test opens; `opened` resolves once it is. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** Poll until `done` (the cap is only so that a broken adapter fails instead of hanging). */
async function until<T>(what: string, read: () => Promise<T> | T, done: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`never happened: ${what}`);
}

/** The JobFailedError a promise rejects with. */
async function failureOf(finished: Promise<unknown>): Promise<JobFailedError> {
  const error = await finished.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(error instanceof JobFailedError, `expected a JobFailedError, got ${String(error)}`);
  return error;
}

/**
 * Runs the contract suite against one adapter. `make` builds a fresh producer and consumer sharing
 * one empty queue; `testOptions` go to each test (e.g. `{ skip: 'no Redis' }`).
 */
export function jobQueueContract(
  name: string,
  make: (options: QueueUnderTestOptions) => QueueUnderTest | Promise<QueueUnderTest>,
  testOptions: { skip?: string | boolean } = {},
) {
  const it = (title: string, body: () => Promise<void>) => void test(`${name}: ${title}`, testOptions, body);
  const defaults: QueueUnderTestOptions = { concurrency: 1, maxWaiting: 4, jobTimeoutSeconds: 0 };
  async function using(options: Partial<QueueUnderTestOptions>, body: (q: QueueUnderTest) => Promise<void>) {
    const q = await make({ ...defaults, ...options });
    try {
      await body(q);
    } finally {
      await q.close();
    }
  }

  it("a job's data reaches the processor as sent, and its result reaches the caller", () =>
    using({}, async ({ producer, consumer }) => {
      const seen: Array<{ data: JobData; id: string; attempt: number }> = [];
      consumer.process([A], async (data, context) => {
        seen.push({ data, id: context.id, attempt: context.attempt });
        return resultOf(data);
      });
      const id = randomUUID();
      const sent = job('hello');
      const { finished } = await producer.add(id, sent);
      assert.deepEqual(await finished, resultOf(sent));
      assert.deepEqual(seen, [{ data: sent, id, attempt: 1 }]);
    }));

  it('a failing job rejects only its own caller, with JobFailedError carrying the catalogue error', () =>
    using({ concurrency: 2 }, async ({ producer, consumer }) => {
      consumer.process([A], async (data) => {
        if (data.request.prompt === 'bad input') throw errors.invalidImage('mask', 'The mask is not usable.');
        if (data.request.prompt === 'broken') throw new Error("EACCES: permission denied, open '/srv/secret/x.png'");
        return resultOf(data);
      });
      const badId = randomUUID();
      const brokenId = randomUUID();
      const bad = await producer.add(badId, job('bad input'));
      const broken = await producer.add(brokenId, job('broken'));
      const good = await producer.add(randomUUID(), job('good'));

      const refused = await failureOf(bad.finished);
      assert.equal(refused.failure.status, 400);
      assert.deepEqual(refused.failure.error, errors.invalidImage('mask', 'The mask is not usable.').toWire().error);

      // Anything that is not a catalogue error is an internal error naming the job, never its own text.
      const internal = await failureOf(broken.finished);
      assert.equal(internal.failure.status, 500);
      assert.equal(internal.failure.error.code, 'InternalServerError');
      assert.ok(internal.failure.error.message.includes(brokenId));
      for (const secret of ['EACCES', '/srv', 'permission denied'])
        assert.ok(!JSON.stringify(internal.failure).includes(secret), secret);

      assert.equal((await good.finished).revisedPrompt, 'good');
    }));

  it('a full deployment refuses at once with QueueFullError and admits nothing', () =>
    using({ concurrency: 1, maxWaiting: 1 }, async ({ producer, consumer }) => {
      const g = gate();
      const started: string[] = [];
      consumer.process([A], async (data) => {
        started.push(data.request.prompt);
        await g.opened;
        return resultOf(data);
      });
      const running = await producer.add(randomUUID(), job('one'));
      await until(
        'the first job to start',
        () => started.length,
        (n) => n === 1,
      );
      const waiting = await producer.add(randomUUID(), job('two'));
      const refused = await producer.add(randomUUID(), job('three')).catch((e: unknown) => e);
      assert.ok(refused instanceof QueueFullError, `expected QueueFullError, got ${String(refused)}`);
      assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds < 60, String(refused.retryAfterSeconds));
      const retryAfter = await producer.retryAfterSeconds(A);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter < 60, String(retryAfter));
      assert.deepEqual(await producer.counts(A), { waiting: 1, active: 1 });
      g.open();
      assert.deepEqual(
        [(await running.finished).revisedPrompt, (await waiting.finished).revisedPrompt],
        ['one', 'two'],
      );
      assert.deepEqual(started, ['one', 'two']);
      assert.deepEqual(
        await until(
          'the counts to drop',
          () => producer.counts(A),
          (c) => c.active === 0,
        ),
        {
          waiting: 0,
          active: 0,
        },
      );
    }));

  it('maxWaiting counts the jobs waiting per deployment: a full deployment does not refuse another', () =>
    using({ concurrency: 1, maxWaiting: 1 }, async ({ producer, consumer }) => {
      const g = gate();
      const started: string[] = [];
      consumer.process([A, B], async (data) => {
        started.push(data.request.prompt);
        await g.opened;
        return resultOf(data);
      });
      const first = await producer.add(randomUUID(), job('a1'));
      await until(
        'the first job to start',
        () => started.length,
        (n) => n === 1,
      );
      const second = await producer.add(randomUUID(), job('a2'));
      await assert.rejects(producer.add(randomUUID(), job('a3')), QueueFullError);
      const other = await producer.add(randomUUID(), job('b1', B));
      assert.deepEqual(await producer.counts(B), { waiting: 1, active: 0 });
      g.open();
      await Promise.all([first.finished, second.finished, other.finished]);
      assert.deepEqual(started, ['a1', 'a2', 'b1']);
    }));

  it('jobs of a deployment run in the order they were admitted', () =>
    using({ concurrency: 1 }, async ({ producer, consumer }) => {
      const g = gate();
      const order: string[] = [];
      consumer.process([A], async (data) => {
        order.push(data.request.prompt);
        await g.opened;
        return resultOf(data);
      });
      const jobs = [await producer.add(randomUUID(), job('first'))];
      await until(
        'the first job to start',
        () => order.length,
        (n) => n === 1,
      );
      for (const name of ['second', 'third', 'fourth']) jobs.push(await producer.add(randomUUID(), job(name)));
      g.open();
      await Promise.all(jobs.map((j) => j.finished));
      assert.deepEqual(order, ['first', 'second', 'third', 'fourth']);
    }));

  it('a consumer takes only the deployments it processes', () =>
    using({ concurrency: 2 }, async ({ producer, consumer }) => {
      const ran: string[] = [];
      consumer.process([B], async (data) => {
        ran.push(data.request.deployment);
        return resultOf(data);
      });
      const forA = await producer.add(randomUUID(), job('for a', A));
      const forB = await producer.add(randomUUID(), job('for b', B));
      assert.equal((await forB.finished).revisedPrompt, 'for b');
      assert.deepEqual(ran, [B]);
      assert.deepEqual(await producer.counts(A), { waiting: 1, active: 0 });
      let settled = false;
      void forA.finished.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(settled, false, 'the job of A is still waiting');
    }));

  it('progress reaches the admitting caller, as JSON and in order', () =>
    using({}, async ({ producer, consumer }) => {
      const reports: JobProgress[] = [
        { step: 1, totalSteps: 3 },
        {
          step: 2,
          totalSteps: 3,
          partialImages: [{ image: 0, partialImageIndex: 0, key: 'transient/j/partial-0-0.png' }],
        },
        { step: 3, totalSteps: 3 },
      ];
      consumer.process([A], async (data, context) => {
        for (const progress of reports) context.reportProgress(progress);
        return resultOf(data);
      });
      const received: JobProgress[] = [];
      const { finished } = await producer.add(randomUUID(), job('p'), { onProgress: (p) => received.push(p) });
      await finished;
      await until(
        'every progress report',
        () => received.length,
        (n) => n >= reports.length,
      );
      assert.deepEqual(received, reports);
    }));

  it('cancelling a waiting job removes it: it never runs, and only its caller fails', () =>
    using({ concurrency: 1 }, async ({ producer, consumer }) => {
      const g = gate();
      const started: string[] = [];
      consumer.process([A], async (data) => {
        started.push(data.request.prompt);
        await g.opened;
        return resultOf(data);
      });
      const running = await producer.add(randomUUID(), job('running'));
      await until(
        'the first job to start',
        () => started.length,
        (n) => n === 1,
      );
      const controller = new AbortController();
      const cancelled = await producer.add(randomUUID(), job('cancelled'), { signal: controller.signal });
      const after = await producer.add(randomUUID(), job('after'));
      controller.abort();
      await failureOf(cancelled.finished);
      await until(
        'the cancelled job to leave',
        () => producer.counts(A),
        (c) => c.waiting === 1,
      );
      g.open();
      await Promise.all([running.finished, after.finished]);
      assert.deepEqual(started, ['running', 'after']);
    }));

  it('cancelling a running job aborts its signal and fails its caller', () =>
    using({}, async ({ producer, consumer }) => {
      let context = null as JobContext | null;
      consumer.process([A], (_data, c) => {
        context = c;
        return new Promise<JobResult>((_resolve, reject) =>
          c.signal.addEventListener('abort', () => reject(c.signal.reason)),
        );
      });
      const controller = new AbortController();
      const { finished } = await producer.add(randomUUID(), job('x'), { signal: controller.signal });
      const running = await until(
        'the job to start',
        () => context,
        (c) => c !== null,
      );
      controller.abort();
      await failureOf(finished);
      await until(
        'its signal to fire',
        () => running?.signal.aborted === true,
        (aborted) => aborted,
      );
      assert.equal(
        await until(
          'the slot to be free',
          () => consumer.running(),
          (n) => n === 0,
        ),
        0,
      );
    }));

  it('a job past the time limit has its signal aborted and fails with the Timeout code', () =>
    using({ jobTimeoutSeconds: 1 }, async ({ producer, consumer }) => {
      let signal: AbortSignal | null = null;
      consumer.process([A], (_data, context) => {
        signal = context.signal;
        // Ignores its signal, as a hung engine would: the job must end all the same.
        return new Promise<JobResult>(() => {});
      });
      const { finished } = await producer.add(randomUUID(), job('slow'));
      const failed = await failureOf(finished);
      assert.equal(failed.failure.status, 500);
      assert.equal(failed.failure.error.code, 'Timeout');
      assert.equal((signal as AbortSignal | null)?.aborted, true);
    }));

  it('close lets running jobs finish within the grace period, then refuses new ones as shutting down', () =>
    using({}, async ({ producer, consumer }) => {
      consumer.process([A], async (data) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return resultOf(data);
      });
      const { finished } = await producer.add(randomUUID(), job('done in time'));
      await until(
        'the job to start',
        () => consumer.running(),
        (n) => n === 1,
      );
      await consumer.close({ graceSeconds: 5 });
      await producer.close({ graceSeconds: 5 });
      assert.equal((await finished).revisedPrompt, 'done in time');
      const late = await failureOf(producer.add(randomUUID(), job('late')));
      assert.equal(late.failure.status, 503);
      assert.equal(late.failure.error.code, 'ServiceUnavailable');
    }));

  it('close aborts a job still running after the grace period, and its caller gets the shutdown code', () =>
    using({}, async ({ producer, consumer }) => {
      let signal: AbortSignal | null = null;
      consumer.process([A], (_data, context) => {
        signal = context.signal;
        return new Promise<JobResult>((_resolve, reject) =>
          context.signal.addEventListener('abort', () => reject(context.signal.reason)),
        );
      });
      const { finished } = await producer.add(randomUUID(), job('cut short'));
      await until(
        'the job to start',
        () => consumer.running(),
        (n) => n === 1,
      );
      await consumer.close({ graceSeconds: 0 });
      const failed = await failureOf(finished);
      assert.equal(failed.failure.status, 503);
      assert.equal(failed.failure.error.code, 'ServiceUnavailable');
      assert.equal((signal as AbortSignal | null)?.aborted, true);
      assert.equal(consumer.running(), 0);
    }));
}
