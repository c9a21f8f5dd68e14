import assert from 'node:assert/strict';
import { test } from 'node:test';

import { type JobQueue, QueueFullError } from '../../src/jobs/queue.ts';

/** A job that finishes when the test says so. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/**
 * The behaviour every JobQueue adapter must have (the in-process queue now, BullMQ later).
 * `make` builds a queue with concurrency 1, one waiting slot and a 1-second job timeout.
 */
export function jobQueueContract(name: string, make: () => JobQueue<string, string>) {
  test(`${name}: a job's result reaches the caller`, async () => {
    const queue = make();
    queue.process(async (data) => data.toUpperCase());
    const { finished } = await queue.add('a', 'hello');
    assert.equal(await finished, 'HELLO');
    await queue.close();
  });

  test(`${name}: a failing job rejects only its own caller`, async () => {
    const queue = make();
    queue.process(async (data) => {
      if (data === 'bad') throw new Error('boom');
      return data;
    });
    const bad = await queue.add('1', 'bad');
    const good = await queue.add('2', 'good');
    await assert.rejects(bad.finished, /boom/);
    assert.equal(await good.finished, 'good');
    await queue.close();
  });

  test(`${name}: a full queue refuses at once with QueueFullError and admits nothing`, async () => {
    const queue = make();
    const g = gate();
    const started: string[] = [];
    queue.process(async (data) => {
      started.push(data);
      await g.opened;
      return data;
    });
    const running = await queue.add('1', 'one');
    const waiting = await queue.add('2', 'two');
    const refused = await queue.add('3', 'three').catch((e: unknown) => e);
    assert.ok(refused instanceof QueueFullError);
    assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds < 60);
    assert.deepEqual(queue.counts(), { waiting: 1, active: 1 });
    g.open();
    assert.deepEqual([await running.finished, await waiting.finished], ['one', 'two']);
    assert.deepEqual(started, ['one', 'two']);
    await queue.close();
  });

  test(`${name}: jobs run in the order they were admitted`, async () => {
    const queue = make();
    const order: string[] = [];
    queue.process(async (data) => {
      order.push(data);
      return data;
    });
    const a = await queue.add('a', 'a');
    const b = await queue.add('b', 'b');
    await Promise.all([a.finished, b.finished]);
    assert.deepEqual(order, ['a', 'b']);
    await queue.close();
  });

  test(`${name}: progress reported by the job reaches the caller`, async () => {
    const queue = make();
    queue.process(async (data, context) => {
      context.reportProgress({ step: 1, totalSteps: 2 });
      context.reportProgress({ step: 2, totalSteps: 2 });
      return data;
    });
    const steps: number[] = [];
    const { finished } = await queue.add('p', 'x', { onProgress: (p) => steps.push(p.step) });
    await finished;
    assert.deepEqual(steps, [1, 2]);
    await queue.close();
  });

  test(`${name}: a caller's abort signal reaches the running job`, async () => {
    const queue = make();
    queue.process(
      (_data, context) =>
        new Promise<string>((_resolve, reject) =>
          context.signal.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
    );
    const controller = new AbortController();
    const { finished } = await queue.add('x', 'x', { signal: controller.signal });
    controller.abort();
    await assert.rejects(finished, /aborted/);
    await queue.close();
  });

  test(`${name}: a job past the time limit has its signal aborted`, async () => {
    const queue = make();
    queue.process(
      (_data, context) =>
        new Promise<string>((_resolve, reject) =>
          context.signal.addEventListener('abort', () => reject(context.signal.reason)),
        ),
    );
    const { finished } = await queue.add('slow', 'x');
    await assert.rejects(finished, { name: 'JobTimeoutError' });
    await queue.close();
  });

  test(`${name}: close lets running jobs finish within the grace period and refuses new ones`, async () => {
    const queue = make();
    queue.process(async (data) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return data;
    });
    const { finished } = await queue.add('r', 'done in time');
    await queue.close({ graceSeconds: 5 });
    assert.equal(await finished, 'done in time');
    await assert.rejects(queue.add('late', 'x'), { name: 'QueueClosedError' });
  });
}
