// The worker-thread helper against a tiny test worker: answers and errors across the boundary,
// progress order, abort before and after posting, a thread that dies, and close with patience.
// Everything is asserted by the order of events, never by how long it took.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  WorkerRequestError,
  WorkerRpc,
  type WorkerRpcOptions,
  WorkerStoppedError,
} from '../../src/runtime/worker-rpc.ts';
import type { TestMethods } from './fixtures/rpc-test-protocol.ts';

const ENTRY = new URL('./fixtures/rpc-test-worker.ts', import.meta.url);
const started: WorkerRpc<TestMethods>[] = [];
after(() => Promise.all(started.map((rpc) => rpc.terminate())));

function start(options: WorkerRpcOptions = {}): WorkerRpc<TestMethods> {
  const rpc = new WorkerRpc<TestMethods>(ENTRY, { name: 'rpc-test', ...options });
  started.push(rpc);
  return rpc;
}

const stopped = (reason: WorkerStoppedError['reason'], what?: RegExp) => (error: unknown) =>
  error instanceof WorkerStoppedError && error.reason === reason && (!what || what.test(error.message));

describe('requests', { concurrency: true }, () => {
  test('each request gets its own answer; a thrown error comes back with its name and message', async () => {
    const rpc = start();
    assert.deepEqual(await Promise.all([rpc.request('echo', { a: 1 }), rpc.request('echo', 'two')]), [{ a: 1 }, 'two']);
    await assert.rejects(rpc.request('fail', 'no such seed'), (error: unknown) => {
      assert.ok(error instanceof WorkerRequestError);
      assert.equal(error.remoteName, 'RangeError');
      assert.equal(error.message, 'no such seed');
      return true;
    });
    const bytes = await rpc.request('bytes', 16);
    assert.deepEqual([...bytes], Array(16).fill(7), 'a transferred buffer arrives whole');
    assert.equal(await rpc.request('echo', 'after a failure'), 'after a failure');
  });

  test('progress arrives in the order sent, all of it before the answer', async () => {
    const rpc = start();
    const events: string[] = [];
    const answer = await rpc.request('count', 5, { onProgress: (n) => events.push(`step ${n}`) });
    events.push(answer);
    assert.deepEqual(events, ['step 1', 'step 2', 'step 3', 'step 4', 'step 5', 'counted 5']);
  });

  test('a progress listener that throws fails its own request, and the thread is told to stop it', async () => {
    const rpc = start();
    const boom = new Error('listener broke');
    await assert.rejects(
      rpc.request('waitForCancel', null, {
        onProgress: () => {
          throw boom;
        },
      }),
      (e) => e === boom,
    );
    assert.ok((await rpc.request('log', null)).includes('handler saw the cancel'));
  });
});

describe('abort', { concurrency: true }, () => {
  test('an already-aborted signal rejects at once with its reason, and nothing reaches the thread', async () => {
    const rpc = start();
    const reason = new Error('gave up');
    await assert.rejects(rpc.request('echo', 'never sent', { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.deepEqual(await rpc.request('log', null), ['request log']);
  });

  test('an abort after posting rejects at once with its reason; the running handler sees the cancel, a queued request is skipped', async () => {
    const rpc = start();
    const running = new AbortController();
    const queued = new AbortController();
    const reason = new Error('timed out');
    const first = rpc.request('waitForCancel', null, {
      signal: running.signal,
      // The handler is running: give up on the queued request first, then on this one.
      onProgress: () => {
        queued.abort(new Error('not wanted'));
        running.abort(reason);
      },
    });
    const second = rpc.request('echo', 'skipped', { signal: queued.signal });
    await assert.rejects(second, /not wanted/);
    await assert.rejects(first, (e) => e === reason);
    assert.deepEqual(await rpc.request('log', null), [
      'request waitForCancel',
      'request echo',
      'cancel',
      'cancel',
      'handler saw the cancel',
      'request log',
    ]);
  });
});

describe('a thread that ends', { concurrency: true }, () => {
  test('exiting rejects every pending request with the exit code; later requests reject at once; onStop is told once', async () => {
    const stops: WorkerStoppedError[] = [];
    const rpc = start({ onStop: (error) => stops.push(error) });
    const exiting = rpc.request('exit', 3);
    const queued = rpc.request('echo', 'behind it');
    queued.catch(() => {}); // asserted below, once the first has settled
    await assert.rejects(exiting, stopped('exited', /the worker thread exited \(code 3\)/));
    await assert.rejects(queued, stopped('exited'));
    assert.equal(rpc.alive, false);
    await assert.rejects(rpc.request('echo', 'too late'), (e) => e === stops[0]);
    assert.equal(stops.length, 1);
    assert.equal(stops[0]!.what, 'exited (code 3)');
  });

  test('an uncaught error in the thread is a crash that names it', async () => {
    const rpc = start();
    await assert.rejects(rpc.request('throwLater', 'kaboom'), stopped('crashed', /crashed \(kaboom\)/));
    assert.equal(rpc.alive, false);
  });
});

describe('close', { concurrency: true }, () => {
  test('lets the requests it holds finish, then the thread ends and requests are refused', async () => {
    const rpc = start();
    const events: string[] = [];
    const counting = rpc.request('count', 20).then((answer) => events.push(answer));
    await rpc.close({ patienceMs: 600_000, overdue: 'terminate' });
    events.push('closed');
    await counting;
    assert.deepEqual(events, ['counted 20', 'closed']);
    assert.equal(rpc.alive, false);
    await assert.rejects(rpc.request('echo', 'after close'), stopped('closed'));
  });

  test('with cancel, the handlers it holds see their signal fire and answer for themselves', async () => {
    const rpc = start();
    let running!: () => void;
    const isRunning = new Promise<void>((resolve) => (running = resolve));
    const waiting = rpc
      .request('waitForCancel', null, { onProgress: () => running() })
      .catch((error: unknown) => error);
    await isRunning;
    await rpc.close({ patienceMs: 600_000, cancel: true, overdue: 'terminate' });
    const error = await waiting;
    assert.ok(error instanceof WorkerRequestError && error.remoteName === 'AbortError', String(error));
  });

  for (const overdue of ['terminate', 'abandon'] as const) {
    test(`a thread still busy after the patience is ${overdue === 'terminate' ? 'terminated' : 'abandoned'}, and what it held is rejected as closed`, async () => {
      const rpc = start();
      let running!: () => void;
      const isRunning = new Promise<void>((resolve) => (running = resolve));
      const hanging = rpc.request('hang', null, { onProgress: () => running() });
      await isRunning;
      const events: string[] = [];
      const rejected = hanging.catch((error: unknown) => events.push('request rejected') && error);
      await rpc.close({ patienceMs: 1, overdue });
      events.push('closed');
      assert.ok(stopped('closed')(await rejected));
      assert.equal(rpc.alive, false);
      assert.deepEqual(events, ['request rejected', 'closed']);
    });
  }
});
