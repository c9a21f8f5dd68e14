// The scale-out roles composed in one test process: an API node (createApiNode) and a generation
// worker (createWorker) on a real Redis, PostgreSQL and S3 (radosgw), with the placeholder engine.
// Requests go to the API node; the worker takes their jobs from Redis. The tests wait for states
// (a worker counted, an operation ended), never for a length of time.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { pino } from 'pino';

import { type App, createApiNode, createWorker, type Worker } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { reportMissingService, type RunningService, startService } from '../helpers/services.ts';

const KEY = 'roles-test-key-0123456789';
const SECRET = 'roles-test-signing-secret-0123456789abcdef';
const logger = pino({ level: process.env.EASEL_TEST_LOG ?? 'silent' });

/** Polls until `condition` holds; the limit only stops a hung test, it is not what is tested. */
async function until<T>(probe: () => Promise<T | null | false>, what: string): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const services = (['redis', 'postgres', 's3'] as const).map((name) => [name, startService(name)] as const);
const missing = services.find(([, s]) => !s.ok);

if (missing) {
  reportMissingService('scale-out roles (api node and worker)', (missing[1] as { missing: string }).missing);
  for (const [, s] of services) if (s.ok) s.service.stop();
} else {
  const [redis, postgres, s3] = services.map(([, s]) => (s as { service: RunningService }).service) as [
    RunningService,
    RunningService,
    RunningService,
  ];
  after(() => {
    for (const s of [redis, postgres, s3]) s.stop();
  });
  // The AWS SDK reads its credentials from the standard variables, as in production.
  process.env.AWS_ACCESS_KEY_ID = s3.env.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = s3.env.AWS_SECRET_ACCESS_KEY;

  const env = {
    EASEL_REDIS_URL: redis.url,
    EASEL_DATABASE_URL: postgres.url,
    EASEL_S3_ENDPOINT: s3.url,
    EASEL_S3_BUCKET: 'easel-roles-test',
    EASEL_S3_REGION: s3.env.AWS_REGION ?? 'us-east-1',
    EASEL_S3_FORCE_PATH_STYLE: 'true',
    EASEL_SIGNING_SECRET: SECRET,
    EASEL_API_KEYS: KEY,
    EASEL_WORKER_HEARTBEAT_SECONDS: '1',
    EASEL_WORKER_DEAD_AFTER_SECONDS: '2',
    EASEL_QUEUE_LOCK_SECONDS: '2',
    EASEL_QUEUE_STALLED_CHECK_SECONDS: '1',
  };
  const config: Config = loadConfig(env);

  describe('scale-out roles in one process: an API node and a worker', () => {
    let api: App;
    let worker: Worker | null = null;

    before(async () => {
      api = await createApiNode(config, { logger, workerCacheMs: 0 });
    });
    after(async () => {
      await worker?.close();
      await api.close();
    });

    const post = (url: string, payload: Record<string, unknown>) =>
      api.server.inject({ method: 'POST', url, payload, headers: { 'api-key': KEY } });
    const get = (url: string) => api.server.inject({ method: 'GET', url, headers: { 'api-key': KEY } });
    const generations = (deployment: string) =>
      `/openai/deployments/${deployment}/images/generations?api-version=2025-04-01-preview`;

    test('without a live worker: /healthz is fine, /readyz is 503 with zero workers, a request gets 503 noLiveWorker at once', async () => {
      assert.equal((await api.server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      const ready = await api.server.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      const body = ready.json<{ status: string; deployments: Record<string, { workers: object }> }>();
      assert.equal(body.status, 'not ready');
      assert.deepEqual(body.deployments['gpt-image-1']?.workers, { ready: 0, loading: 0, unavailable: 0 });

      const res = await post(generations('gpt-image-1'), { prompt: 'a lighthouse', size: '1024x1024' });
      assert.equal(res.statusCode, 503);
      const error = res.json<{ error: { code: string; message: string } }>().error;
      assert.equal(error.code, 'ServiceUnavailable');
      assert.match(error.message, /No live worker serves the deployment 'gpt-image-1'/);

      const submit = await post('/openai/images/generations:submit?api-version=2023-06-01-preview', {
        prompt: 'a kite',
      });
      assert.equal(submit.statusCode, 503);
      assert.match(submit.json<{ error: { message: string } }>().error.message, /No live worker.*'dall-e-2'/);
    });

    test('with a worker: /readyz counts it per deployment, a sync generation runs on it and its URL serves the image', async () => {
      worker = await createWorker(config, { logger, port: null });
      await worker.modelsLoaded;
      const ready = await until(async () => {
        const res = await api.server.inject({ method: 'GET', url: '/readyz' });
        return res.statusCode === 200 && res;
      }, 'the API node to count the worker');
      const body = ready.json<{ liveWorkers: number; deployments: Record<string, { workers: object }> }>();
      assert.equal(body.liveWorkers, 1);
      for (const name of ['dall-e-2', 'dall-e-3', 'gpt-image-1'])
        assert.deepEqual(body.deployments[name]?.workers, { ready: 1, loading: 0, unavailable: 0 }, name);

      const res = await post(generations('dall-e-3'), { prompt: 'a lighthouse at dusk', response_format: 'url' });
      assert.equal(res.statusCode, 200, res.body);
      const url = res.json<{ data: { url: string }[] }>().data[0]!.url;
      const image = await api.server.inject({ method: 'GET', url: new URL(url).pathname + new URL(url).search });
      assert.equal(image.statusCode, 200);
      assert.equal(image.headers['content-type'], 'image/png');
      assert.deepEqual([...image.rawPayload.subarray(1, 4)], [...Buffer.from('PNG')]);

      const metrics = await api.server.inject({ method: 'GET', url: '/metrics' });
      assert.match(metrics.body, /easel_live_workers\{deployment="dall-e-3",state="ready"\} 1/);
      assert.match(metrics.body, /easel_deployment_up\{deployment="dall-e-3",engine="placeholder"\} 1/);

      const b64 = await post(generations('gpt-image-1'), { prompt: 'a kite', size: '1024x1024' });
      assert.equal(b64.statusCode, 200, b64.body);
      assert.ok(b64.json<{ data: { b64_json: string }[] }>().data[0]!.b64_json.length > 100);
    });

    test('a DALL-E 2 operation submitted to the API node runs on the worker; polling shows it succeeded', async () => {
      assert.ok(worker, 'the previous test started the worker');
      const submit = await post('/openai/images/generations:submit?api-version=2023-06-01-preview', {
        prompt: 'a red kite over hills',
      });
      assert.equal(submit.statusCode, 202, submit.body);
      const id = submit.json<{ id: string }>().id;
      const done = await until(async () => {
        const res = await get(`/openai/operations/images/${id}?api-version=2023-06-01-preview`);
        const body = res.json<{ status: string; result?: { data: { url: string }[] } }>();
        return ['succeeded', 'failed', 'canceled'].includes(body.status) && body;
      }, 'the operation to end');
      assert.equal(done.status, 'succeeded');
      const url = new URL(done.result!.data[0]!.url);
      assert.equal((await api.server.inject({ method: 'GET', url: url.pathname + url.search })).statusCode, 200);
    });

    test("the worker's own server: /healthz, /readyz with its deployments' engine states, /metrics with job counts", async () => {
      assert.ok(worker);
      assert.equal((await worker.server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      const ready = await worker.server.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 200);
      const body = ready.json<{ worker: string; deployments: Record<string, { status: string; engine: string }> }>();
      assert.equal(body.worker, worker.id);
      assert.deepEqual(body.deployments['dall-e-3'], { model: 'dall-e-3', engine: 'placeholder', status: 'ready' });
      const metrics = await worker.server.inject({ method: 'GET', url: '/metrics' });
      assert.equal(metrics.statusCode, 200);
      assert.match(metrics.body, /easel_job_duration_seconds_count\{deployment="dall-e-3",outcome="succeeded"\} 1/);
      assert.match(metrics.body, /easel_queue_wait_seconds_count \d/);
      assert.match(metrics.body, /easel_worker_running_jobs 0/);
    });

    test('a second worker serving a subset of the deployments is counted for those only', async () => {
      const second = await createWorker(config, { logger, deployments: ['gpt-image-1'] });
      try {
        assert.deepEqual(second.deployments, ['gpt-image-1']);
        const counts = await until(async () => {
          const body = (await api.server.inject({ method: 'GET', url: '/readyz' })).json<{
            liveWorkers: number;
            deployments: Record<string, { workers: { ready: number } }>;
          }>();
          return body.liveWorkers === 2 && body;
        }, 'the API node to count the second worker');
        assert.equal(counts.deployments['gpt-image-1']?.workers.ready, 2);
        assert.equal(counts.deployments['dall-e-3']?.workers.ready, 1);
      } finally {
        await second.close();
      }
    });

    test('a deployment whose model cannot load: the worker announces it unavailable and the API node refuses it with 503', async () => {
      const withBroken = loadConfig(env, {
        deployments: [
          { name: 'dall-e-3', model: 'dall-e-3', engine: 'placeholder' },
          {
            name: 'broken',
            model: 'gpt-image-1',
            engine: 'diffusion',
            diffusion: { folder: '/nonexistent/easel-model' },
          },
        ],
      });
      const brokenApi = await createApiNode(withBroken, { logger, workerCacheMs: 0 });
      const third = await createWorker(withBroken, { logger, deployments: ['broken'] });
      try {
        await third.modelsLoaded;
        const ready = await until(async () => {
          const body = (await brokenApi.server.inject({ method: 'GET', url: '/readyz' })).json<{
            status: string;
            deployments: Record<string, { workers: { ready: number; unavailable: number } }>;
          }>();
          return body.deployments.broken?.workers.unavailable === 1 && body;
        }, 'the API node to see the unavailable deployment');
        // dall-e-3 still has a worker: the node stays ready, and the body says which deployment has none.
        assert.equal(ready.status, 'ready');
        assert.equal(ready.deployments.broken?.workers.ready, 0);
        const res = await brokenApi.server.inject({
          method: 'POST',
          url: generations('broken'),
          payload: { prompt: 'a lighthouse' },
          headers: { 'api-key': KEY },
        });
        assert.equal(res.statusCode, 503);
        assert.match(
          res.json<{ error: { message: string } }>().error.message,
          /No live worker serves the deployment 'broken'/,
        );
        const workerReady = await third.server.inject({ method: 'GET', url: '/readyz' });
        assert.equal(workerReady.statusCode, 503);
        assert.equal(
          workerReady.json<{ deployments: { broken: { status: string } } }>().deployments.broken.status,
          'unavailable',
        );
      } finally {
        await third.close();
        await brokenApi.close();
      }
    });

    test('a worker that stops withdraws at once: the API node counts none and refuses with 503 again', async () => {
      assert.ok(worker);
      await worker.close();
      worker = null;
      const ready = await api.server.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      const metrics = await api.server.inject({ method: 'GET', url: '/metrics' });
      assert.match(metrics.body, /easel_deployment_up\{deployment="dall-e-3",engine="placeholder"\} 0/);
      const res = await post(generations('dall-e-3'), { prompt: 'a lighthouse' });
      assert.equal(res.statusCode, 503);
      assert.match(res.json<{ error: { message: string } }>().error.message, /No live worker/);
    });

    test('PostgreSQL away: a poll gets the catalogue 503; Redis away: admission gets queueUnavailable; /readyz 503 and /healthz still 200', async () => {
      postgres.halt();
      try {
        const res = await get(
          '/openai/operations/images/00000000-0000-4000-8000-000000000000?api-version=2023-06-01-preview',
        );
        assert.equal(res.statusCode, 503, res.body);
        assert.match(res.json<{ error: { message: string } }>().error.message, /operation database is unavailable/);
      } finally {
        postgres.resume();
      }
      redis.halt();
      try {
        const res = await post(generations('dall-e-3'), { prompt: 'a lighthouse' });
        assert.equal(res.statusCode, 503, res.body);
        assert.match(res.json<{ error: { message: string } }>().error.message, /job queue service is not available/);
        assert.equal((await api.server.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
        assert.equal((await api.server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      } finally {
        redis.resume();
      }
    });
  });
}
