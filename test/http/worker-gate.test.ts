// An API node's admission check against the worker registry (src/http/worker-gate.ts): one read per
// cache period, failures not cached, and the catalogue's 503s.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiError } from '../../src/contract/errors.ts';
import { WorkerGate } from '../../src/http/worker-gate.ts';
import { countByDeployment, type LiveWorkers, WorkerRegistryError } from '../../src/jobs/worker-registry.ts';

function directory(read: () => Promise<LiveWorkers>) {
  let reads = 0;
  return {
    reads: () => reads,
    liveWorkers: () => {
      reads++;
      return read();
    },
  };
}

const live = (deployments: { name: string; ready: boolean; reason?: string }[]): LiveWorkers => {
  const workers = [{ id: 'w', host: 'h', pid: 1, port: null, seenAt: 0, deployments }];
  return { workers, perDeployment: countByDeployment(workers) };
};

test('reads the registry at most once per cache period; concurrent callers share one read', async () => {
  let now = 0;
  const dir = directory(async () => live([{ name: 'a', ready: true }]));
  const gate = new WorkerGate(dir, { cacheMs: 1000, now: () => now });
  await Promise.all([gate.require('a'), gate.require('a'), gate.require('a')]);
  assert.equal(dir.reads(), 1);
  now = 999;
  await gate.require('a');
  assert.equal(dir.reads(), 1);
  now = 1000;
  await gate.require('a');
  assert.equal(dir.reads(), 2);
});

test('no ready worker: noLiveWorker (503), saying when some are loading it', async () => {
  const gate = new WorkerGate(
    directory(async () =>
      live([
        { name: 'loading', ready: false },
        { name: 'broken', ready: false, reason: 'x' },
      ]),
    ),
  );
  for (const [name, message] of [
    ['absent', /Start a worker \(easel worker\)/],
    ['broken', /Start a worker/],
    ['loading', /1 worker is still loading it/],
  ] as const) {
    await assert.rejects(gate.require(name), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 503);
      assert.equal(error.code, 'ServiceUnavailable');
      assert.match(error.message, message);
      return true;
    });
  }
});

test('a registry that cannot be read: queueUnavailable (503), not cached, so the next call reads again', async () => {
  let fail = true;
  const dir = directory(async () => {
    if (fail)
      throw new WorkerRegistryError('cannot read the worker registry at redis://127.0.0.1:1: connection refused');
    return live([{ name: 'a', ready: true }]);
  });
  const gate = new WorkerGate(dir, { cacheMs: 60_000 });
  await assert.rejects(gate.require('a'), (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 503);
    assert.match(error.message, /job queue service is not available/);
    assert.doesNotMatch(error.message, /127\.0\.0\.1/);
    return true;
  });
  fail = false;
  await gate.require('a');
  assert.equal(dir.reads(), 2);
});
