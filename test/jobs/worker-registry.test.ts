// The worker registry: the Redis adapter against a real Redis (scripts/services/redis.sh), reached
// through a TCP relay the test can cut to play "Redis is down"; the in-process adapter; the heartbeat.
import assert from 'node:assert/strict';
import { createServer, type Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Redis } from 'ioredis';

import {
  countByDeployment,
  InProcessWorkerRegistry,
  newWorkerId,
  RedisWorkerRegistry,
  startHeartbeat,
  type WorkerAnnouncement,
  type WorkerAnnouncer,
  WorkerRegistryError,
  workersFor,
} from '../../src/jobs/worker-registry.ts';
import { reportMissingService, type RunningService, startService } from '../helpers/services.ts';

function worker(id: string, deployments: WorkerAnnouncement['deployments']): WorkerAnnouncement {
  return { id, host: 'test-host', pid: 4242, port: null, deployments };
}

/** Polls `check` until it returns true; fails after `limitMs` (generous: never a timing assertion). */
async function eventually(what: string, check: () => Promise<boolean>, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${limitMs} ms`);
    await sleep(100);
  }
}

/** A TCP relay to the real Redis: `cut()` closes it and every connection through it, `restore()` listens again. */
class Relay {
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: number) {}

  async restore(): Promise<void> {
    const server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(this.target, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const socket of this.#sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const started = startService('redis');
if (!started.ok) {
  reportMissingService('worker registry on Redis', started.missing);
} else {
  const redis: RunningService = started.service;
  const redisPort = Number(new URL(redis.url).port);
  const open: RedisWorkerRegistry[] = [];
  let raw: Redis;
  let prefixes = 0;

  /** A registry with its own key prefix per test (`shared` reuses the previous one, for a second node). */
  async function registry(options: { deadAfterSeconds?: number; url?: string; prefix?: string } = {}) {
    const opened = await RedisWorkerRegistry.open({
      url: options.url ?? redis.url,
      deadAfterSeconds: options.deadAfterSeconds ?? 30,
      keyPrefix: options.prefix ?? `test${prefixes}`,
      commandTimeoutMs: 1000,
    });
    open.push(opened);
    return opened;
  }

  before(() => {
    raw = new Redis(redis.url);
  });
  after(async () => {
    for (const r of open) await r.close();
    raw.disconnect();
    redis.stop();
  });

  describe('RedisWorkerRegistry (real Redis)', () => {
    test('two registries, as two nodes, see each other’s workers', async () => {
      const prefix = `p${++prefixes}`;
      const a = await registry({ prefix });
      const b = await registry({ prefix });
      await a.announce(worker('worker-a', [{ name: 'dall-e-3', ready: true }]));
      await b.announce(worker('worker-b', [{ name: 'dall-e-3', ready: true }]));
      for (const side of [a, b]) {
        const live = await side.liveWorkers();
        assert.deepEqual(
          live.workers.map((w) => w.id),
          ['worker-a', 'worker-b'],
        );
        assert.deepEqual(live.perDeployment.get('dall-e-3'), { ready: 2, loading: 0, unavailable: 0 });
        const first = live.workers[0]!;
        assert.deepEqual(
          { host: first.host, pid: first.pid, port: first.port, deployments: first.deployments },
          { host: 'test-host', pid: 4242, port: null, deployments: [{ name: 'dall-e-3', ready: true }] },
        );
        assert.equal(typeof first.seenAt, 'number');
      }
      // A registry with another prefix (another easel sharing the Redis) sees none of them.
      const other = await registry({ prefix: `${prefix}-other` });
      assert.deepEqual((await other.liveWorkers()).workers, []);
    });

    test('readiness per deployment counts ready, loading and unavailable workers', async () => {
      const prefix = `p${++prefixes}`;
      const r = await registry({ prefix });
      await r.announce(
        worker('w1', [
          { name: 'a', ready: true },
          { name: 'b', ready: false },
        ]),
      );
      await r.announce(
        worker('w2', [
          { name: 'a', ready: true },
          { name: 'b', ready: false, reason: 'model folder missing' },
        ]),
      );
      await r.announce(worker('w3', [{ name: 'a', ready: false }]));
      // A worker's next heartbeat replaces its previous announcement.
      await r.announce(worker('w3', [{ name: 'a', ready: true }]));
      const live = await r.liveWorkers();
      assert.deepEqual(live.perDeployment.get('a'), { ready: 3, loading: 0, unavailable: 0 });
      assert.deepEqual(live.perDeployment.get('b'), { ready: 0, loading: 1, unavailable: 1 });
      assert.deepEqual(workersFor(live, 'c'), { ready: 0, loading: 0, unavailable: 0 });
      assert.deepEqual(live.workers.find((w) => w.id === 'w2')!.deployments[1], {
        name: 'b',
        ready: false,
        reason: 'model folder missing',
      });
    });

    test('a worker that stops heartbeating disappears after deadAfterSeconds, and its id leaves the set', async () => {
      const prefix = `p${++prefixes}`;
      const quick = await registry({ prefix, deadAfterSeconds: 1 });
      const reader = await registry({ prefix });
      await quick.announce(worker('silent', [{ name: 'a', ready: true }]));
      await reader.announce(worker('steady', [{ name: 'a', ready: true }]));
      assert.deepEqual(
        (await reader.liveWorkers()).workers.map((w) => w.id),
        ['silent', 'steady'],
      );
      await eventually('the silent worker is gone', async () => {
        const live = await reader.liveWorkers();
        return !live.workers.some((w) => w.id === 'silent');
      });
      const live = await reader.liveWorkers();
      assert.deepEqual(
        live.workers.map((w) => w.id),
        ['steady'],
      );
      assert.deepEqual(live.perDeployment.get('a'), { ready: 1, loading: 0, unavailable: 0 });
      assert.deepEqual(await raw.smembers(`${prefix}:registry:workers`), ['steady']);
    });

    test('withdraw removes the worker at once', async () => {
      const prefix = `p${++prefixes}`;
      const leaving = await registry({ prefix });
      const reader = await registry({ prefix });
      await leaving.announce(worker('leaving', [{ name: 'a', ready: true }]));
      assert.equal((await reader.liveWorkers()).workers.length, 1);
      await leaving.withdraw();
      const live = await reader.liveWorkers();
      assert.deepEqual(live.workers, []);
      assert.equal(live.perDeployment.size, 0);
      assert.equal(await raw.exists(`${prefix}:registry:worker:leaving`), 0);
      // A second withdraw has nothing left to remove.
      await leaving.withdraw();
    });

    test('a record that is not a worker is left out, the others still read', async () => {
      const prefix = `p${++prefixes}`;
      const r = await registry({ prefix });
      await r.announce(worker('good', [{ name: 'a', ready: true }]));
      await raw.sadd(`${prefix}:registry:workers`, 'garbage', 'wrong-shape');
      await raw.set(`${prefix}:registry:worker:garbage`, '{not json', 'EX', 60);
      await raw.set(`${prefix}:registry:worker:wrong-shape`, JSON.stringify({ id: 'x', deployments: 'all' }), 'EX', 60);
      const live = await r.liveWorkers();
      assert.deepEqual(
        live.workers.map((w) => w.id),
        ['good'],
      );
    });

    test('Redis down: calls reject with a clean error and the process carries on; they work again when it is back', async () => {
      const prefix = `p${++prefixes}`;
      const relay = new Relay(redisPort);
      await relay.restore();
      const url = `redis://127.0.0.1:${relay.port}`;
      const r = await registry({ prefix, url });
      await r.announce(worker('w', [{ name: 'a', ready: true }]));
      await relay.cut();
      await assert.rejects(r.liveWorkers(), (error: unknown) => {
        assert.ok(error instanceof WorkerRegistryError);
        assert.match(error.message, new RegExp(`^cannot read the worker registry at ${url}/?: `));
        return true;
      });
      await assert.rejects(r.announce(worker('w', [])), /cannot announce this worker to the worker registry/);
      await relay.restore();
      await eventually('the registry reads again', async () => {
        try {
          return (await r.liveWorkers()).workers.some((w) => w.id === 'w');
        } catch (error) {
          assert.ok(error instanceof WorkerRegistryError);
          return false;
        }
      });
      await relay.cut();
    });

    test('open on a closed port rejects naming the URL and the cause, without the password', async () => {
      const relay = new Relay(redisPort);
      await relay.restore();
      await relay.cut();
      await assert.rejects(
        RedisWorkerRegistry.open({ url: `redis://:hunter2@127.0.0.1:${relay.port}`, deadAfterSeconds: 5 }),
        (error: unknown) => {
          assert.ok(error instanceof WorkerRegistryError);
          assert.match(
            error.message,
            new RegExp(
              `^cannot reach the worker registry at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${relay.port}: connection refused$`,
            ),
          );
          return true;
        },
      );
    });
  });
}

describe('countByDeployment and worker ids', () => {
  test('a deployment is ready, loading (no reason) or unavailable (a reason) on each worker', () => {
    const counts = countByDeployment([
      worker('1', [
        { name: 'x', ready: true },
        { name: 'y', ready: false },
      ]),
      worker('2', [{ name: 'x', ready: false, reason: 'broken' }]),
    ]);
    assert.deepEqual(Object.fromEntries(counts), {
      x: { ready: 1, loading: 0, unavailable: 1 },
      y: { ready: 0, loading: 1, unavailable: 0 },
    });
  });

  test('worker ids are unique per call and name the process', () => {
    const [a, b] = [newWorkerId(), newWorkerId()];
    assert.notEqual(a, b);
    assert.match(a, new RegExp(`-${process.pid}-[0-9a-f]{8}$`));
  });
});

describe('InProcessWorkerRegistry (embedded mode)', () => {
  test('the process itself is the one worker, with its deployments’ readiness as it is at each call', async () => {
    let loaded = false;
    const registry = new InProcessWorkerRegistry(() => [
      { name: 'dall-e-3', ready: loaded },
      { name: 'broken', ready: false, reason: 'model folder missing' },
    ]);
    let live = await registry.liveWorkers();
    assert.equal(live.workers.length, 1);
    assert.equal(live.workers[0]!.pid, process.pid);
    assert.deepEqual(workersFor(live, 'dall-e-3'), { ready: 0, loading: 1, unavailable: 0 });
    assert.deepEqual(workersFor(live, 'broken'), { ready: 0, loading: 0, unavailable: 1 });
    loaded = true;
    live = await registry.liveWorkers();
    assert.deepEqual(workersFor(live, 'dall-e-3'), { ready: 1, loading: 0, unavailable: 0 });
  });

  test('announce sets its identity (not its readiness); withdraw empties it until the next announce', async () => {
    const registry = new InProcessWorkerRegistry(() => [{ name: 'a', ready: true }]);
    await registry.announce({ id: 'me', host: 'h', pid: 1, port: 8080, deployments: [{ name: 'a', ready: false }] });
    let live = await registry.liveWorkers();
    assert.deepEqual(
      live.workers.map((w) => [w.id, w.host, w.pid, w.port]),
      [['me', 'h', 1, 8080]],
    );
    assert.deepEqual(workersFor(live, 'a'), { ready: 1, loading: 0, unavailable: 0 });
    await registry.withdraw();
    live = await registry.liveWorkers();
    assert.deepEqual([live.workers, live.perDeployment.size], [[], 0]);
    await registry.announce({ id: 'me', host: 'h', pid: 1, port: null, deployments: [] });
    assert.equal((await registry.liveWorkers()).workers.length, 1);
    await registry.close();
  });

  test('a readiness callback that throws makes liveWorkers reject with WorkerRegistryError', async () => {
    const registry = new InProcessWorkerRegistry(() => {
      throw new Error('deployments not built yet');
    });
    await assert.rejects(registry.liveWorkers(), (error: unknown) => {
      assert.ok(error instanceof WorkerRegistryError);
      assert.match(error.message, /deployments not built yet/);
      return true;
    });
  });
});

describe('startHeartbeat', () => {
  /** An announcer that records calls and can be told to fail. */
  function recorder() {
    const calls: string[] = [];
    let failing = false;
    const announcer: WorkerAnnouncer = {
      announce: (w) => {
        calls.push(`announce ${w.deployments.map((d) => `${d.name}:${d.ready}`).join(',')}`);
        return failing ? Promise.reject(new Error('redis away')) : Promise.resolve();
      },
      withdraw: () => {
        calls.push('withdraw');
        return Promise.resolve();
      },
    };
    return { calls, announcer, fail: (on: boolean) => (failing = on) };
  }

  test('announces at once and again at each beat, asking for the readiness afresh; stop withdraws', async () => {
    const { calls, announcer } = recorder();
    let ready = false;
    const heartbeat = startHeartbeat({
      announcer,
      describe: () => worker('w', [{ name: 'a', ready }]),
      intervalSeconds: 0.02,
      onError: (error) => assert.fail(String(error)),
    });
    await eventually('the first beat', () => Promise.resolve(calls.length > 0));
    assert.equal(calls[0], 'announce a:false');
    ready = true;
    await eventually('a later beat reports the new readiness', () =>
      Promise.resolve(calls.includes('announce a:true')),
    );
    await heartbeat.stop();
    assert.equal(calls.at(-1), 'withdraw');
    const count = calls.length;
    await sleep(100);
    assert.equal(calls.length, count, 'no beat after stop');
  });

  test('a failed beat goes to onError and the beats go on', async () => {
    const { calls, announcer, fail } = recorder();
    const errors: unknown[] = [];
    fail(true);
    const heartbeat = startHeartbeat({
      announcer,
      describe: () => worker('w', []),
      intervalSeconds: 0.02,
      onError: (error) => errors.push(error),
    });
    await eventually('two failed beats', () => Promise.resolve(errors.length >= 2));
    fail(false);
    const before = calls.length;
    await eventually('a beat after the failures', () => Promise.resolve(calls.length > before));
    await heartbeat.stop();
    assert.match(String(errors[0]), /redis away/);
  });

  test('a describe() that throws is a failed beat too, never an exception out of the timer', async () => {
    const { calls, announcer } = recorder();
    const errors: unknown[] = [];
    let broken = true;
    const heartbeat = startHeartbeat({
      announcer,
      describe: () => {
        if (broken) throw new Error('no readiness yet');
        return worker('w', []);
      },
      intervalSeconds: 0.02,
      onError: (error) => errors.push(error),
    });
    await eventually('two failed beats', () => Promise.resolve(errors.length >= 2));
    broken = false;
    await eventually('a beat once describe works', () => Promise.resolve(calls.includes('announce ')));
    await heartbeat.stop();
    assert.match(String(errors[0]), /no readiness yet/);
  });
});
