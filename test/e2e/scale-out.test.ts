// Scale-out mode end to end, with real processes: two API nodes (`easel serve --role api`) and two
// generation workers (`easel worker`) from the compiled dist/, sharing a real Redis, PostgreSQL and
// S3 bucket (radosgw) started by scripts/services. The official `openai` client and raw HTTP reach
// both API nodes; then, destructive tests last: a worker killed mid-job, an API node killed, and Redis,
// PostgreSQL and the bucket each taken away and brought back while the processes keep running.
// Everything is asserted by states reached (polled with generous limits), never by timings.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';

import { AzureOpenAI, toFile } from 'openai';

import { decode, halfMask, solidPng } from '../helpers/app.ts';
import { type Cluster, CLUSTER_KEY, type ClusterProcess, startCluster, until } from '../helpers/cluster.ts';
import { reportMissingService } from '../helpers/services.ts';
import { PNG_MAGIC, tempDir } from './helpers.ts';

const SUITE = 'scale-out end to end';
const API_VERSION = '2025-04-01-preview';
const OPS_VERSION = '2023-06-01-preview';
const PROMPT = 'a lighthouse on a cliff at dawn';
/** Each step of the slow deployments waits this long: a job lasts four of them. */
const STEP_MS = 1000;

const CONFIG = {
  deployments: [
    // The first dall-e-2 deployment serves :submit; slow enough for a worker to be killed mid-job.
    { name: 'dall-e-2', model: 'dall-e-2', placeholder: { stepMs: STEP_MS } },
    { name: 'dall-e-3', model: 'dall-e-3' },
    { name: 'gpt-image-1', model: 'gpt-image-1' },
    { name: 'slow', model: 'dall-e-3', placeholder: { stepMs: STEP_MS } },
  ],
  // A dead worker's job is taken over within lockSeconds + 2 × stalledCheckSeconds, and a dead
  // worker stops counting within deadAfterSeconds: short, so the suite stays quick.
  queue: { lockSeconds: 2, stalledCheckSeconds: 1, attempts: 2 },
  workers: { heartbeatSeconds: 1, deadAfterSeconds: 3 },
};

interface Envelope {
  error: { code: string; message: string };
}
interface Operation {
  id: string;
  status: string;
  result?: { data: { url?: string }[] };
  error?: { code: string; message: string };
}

const PYTHON = '/usr/bin/python3';
const PYTHON_HINT = 'apt-get install -y python3-requests python3-pil';
const pythonReady = spawnSync(PYTHON, ['-c', 'import requests, PIL']).status === 0;

const started = await startCluster({ apis: 2, workers: 2, config: CONFIG });
if (!started.ok) {
  reportMissingService(SUITE, started.missing);
} else {
  const cluster: Cluster = started.cluster;
  const [api1, api2] = cluster.apis as [ClusterProcess, ClusterProcess];
  const dirs: string[] = [];
  let failed = false;

  after(async () => {
    // A failure is easier to read with what the processes said.
    if (failed) process.stderr.write(`\n${cluster.logs()}\n`);
    await cluster.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** Wraps a test body so that a failure prints the processes' logs once the suite ends. */
  const body = (fn: (t: TestContext) => Promise<void>) => async (t: TestContext) => {
    try {
      await fn(t);
    } catch (error) {
      failed = true;
      throw error;
    }
  };

  const client = (node: ClusterProcess, deployment?: string) =>
    new AzureOpenAI({
      endpoint: node.base,
      apiKey: CLUSTER_KEY,
      apiVersion: API_VERSION,
      maxRetries: 0,
      ...(deployment ? { deployment } : {}),
    });

  const post = (node: ClusterProcess, path: string, json: object) =>
    fetch(`${node.base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': CLUSTER_KEY },
      body: JSON.stringify(json),
    });
  const generate = (node: ClusterProcess, deployment: string, json: object) =>
    post(node, `/openai/deployments/${deployment}/images/generations?api-version=${API_VERSION}`, {
      prompt: PROMPT,
      ...json,
    });
  const submit = (node: ClusterProcess) =>
    post(node, `/openai/images/generations:submit?api-version=${OPS_VERSION}`, {
      prompt: PROMPT,
      size: '256x256',
      n: 1,
    });
  /** The same path and query on another node. */
  const on = (node: ClusterProcess, url: string) => {
    const parsed = new URL(url);
    return `${node.base}${parsed.pathname}${parsed.search}`;
  };
  const getOperation = async (url: string) => {
    const response = await fetch(url, { headers: { 'api-key': CLUSTER_KEY } });
    assert.equal(response.status, 200, `GET ${url}`);
    return (await response.json()) as Operation;
  };
  const pollToEnd = (url: string, deadlineMs = 60_000) =>
    until(
      `operation ${url} to end`,
      async () => {
        const operation = await getOperation(url);
        return ['notRunning', 'running'].includes(operation.status) ? undefined : operation;
      },
      deadlineMs,
      250,
    );

  /** A response that is Azure's error envelope with this status. */
  async function assertEnvelope(response: Response, status: number | ((s: number) => boolean), what: string) {
    const text = await response.text();
    const ok = typeof status === 'number' ? response.status === status : status(response.status);
    assert.ok(ok, `${what}: status ${response.status}: ${text}`);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/, what);
    const envelope = JSON.parse(text) as Envelope;
    assert.equal(typeof envelope.error.code, 'string', `${what}: ${text}`);
    assert.equal(typeof envelope.error.message, 'string', `${what}: ${text}`);
    return envelope;
  }

  const killed = new Set<ClusterProcess>();
  const killOnPurpose = (p: ClusterProcess) => {
    killed.add(p);
    return cluster.kill(p, 'SIGKILL');
  };

  /** Every process the suite has not killed on purpose is still running. */
  function assertNoneCrashed() {
    for (const p of [...cluster.apis, ...cluster.workers]) {
      if (killed.has(p)) continue;
      assert.ok(p.running(), `${p.name} is still running\n${p.stdout()}${p.stderr()}`);
    }
  }

  /** After a worker was killed: it stops counting on the API nodes, and a new one takes its place. */
  async function replaceKilledWorker() {
    await cluster.waitForWorkers(cluster.liveWorkers().length);
    await cluster.startWorker();
    await cluster.waitForWorkers(2);
    assertNoneCrashed();
  }

  /** Which workers run a job now (their /readyz `running`). */
  async function busyWorkers(): Promise<ClusterProcess[]> {
    const busy: ClusterProcess[] = [];
    for (const worker of cluster.liveWorkers()) {
      const state = (await (await fetch(`${worker.base}/readyz`)).json()) as { running?: number };
      if ((state.running ?? 0) > 0) busy.push(worker);
    }
    return busy;
  }

  describe(SUITE, { timeout: 300_000 }, () => {
    before(() => assert.equal(cluster.liveWorkers().length, 2));

    it(
      "both API nodes' /readyz count both workers for every deployment",
      body(async () => {
        for (const api of [api1, api2]) {
          const response = await fetch(`${api.base}/readyz`);
          assert.equal(response.status, 200);
          const state = (await response.json()) as {
            status: string;
            deployments: Record<string, { workers: { ready: number } }>;
          };
          assert.equal(state.status, 'ready');
          for (const name of cluster.deployments) assert.equal(state.deployments[name]?.workers.ready, 2, name);
        }
      }),
    );

    for (const [index, node] of [
      [1, api1],
      [2, api2],
    ] as const) {
      it(
        `openai client on API node ${index}: dall-e-3 url (downloads from both nodes) and b64_json`,
        body(async () => {
          const url = (await client(node).images.generate({ model: 'dall-e-3', prompt: PROMPT })).data![0]!.url!;
          assert.ok(url.startsWith(`${node.base}/files/`), url);
          for (const other of [api1, api2]) {
            const file = await fetch(on(other, url));
            assert.equal(file.status, 200, on(other, url));
            const bytes = Buffer.from(await file.arrayBuffer());
            assert.deepEqual(bytes.subarray(0, 4), PNG_MAGIC);
            const image = await decode(bytes);
            assert.deepEqual([image.width, image.height], [1024, 1024]);
          }
          const b64 = await client(node).images.generate({
            model: 'dall-e-3',
            prompt: PROMPT,
            response_format: 'b64_json',
          });
          const image = await decode(Buffer.from(b64.data![0]!.b64_json!, 'base64'));
          assert.deepEqual([image.format, image.width, image.height], ['png', 1024, 1024]);
        }),
      );

      it(
        `openai client on API node ${index}: gpt-image-1 edit with a mask keeps the unmasked half`,
        body(async () => {
          const input = await solidPng(128, 128, [10, 200, 30, 255]);
          const response = await client(node, 'gpt-image-1').images.edit({
            model: 'gpt-image-1',
            prompt: 'add a red door',
            image: await toFile(input, 'in.png', { type: 'image/png' }),
            mask: await toFile(await halfMask(128, 128), 'mask.png', { type: 'image/png' }),
          });
          const output = await decode(Buffer.from(response.data![0]!.b64_json!, 'base64'));
          const original = await decode(input);
          assert.deepEqual([output.width, output.height], [128, 128]);
          // The right half (which the half mask keeps) is the input, pixel for pixel.
          for (let y = 0; y < 128; y++) {
            const row = (y * 128 + 64) * 4;
            assert.equal(output.data.subarray(row, row + 64 * 4).compare(original.data.subarray(row, row + 64 * 4)), 0);
          }
        }),
      );

      it(
        `openai client on API node ${index}: gpt-image-1 stream with two partial images`,
        body(async () => {
          const stream = await client(node, 'gpt-image-1').images.generate({
            model: 'gpt-image-1',
            prompt: PROMPT,
            size: '1024x1024',
            stream: true,
            partial_images: 2,
          });
          const events: { type: string; b64_json: string; partial_image_index?: number }[] = [];
          for await (const event of stream) events.push(event);
          assert.deepEqual(
            events.map((e) => e.type),
            ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed'],
          );
          assert.deepEqual(
            events.slice(0, 2).map((e) => e.partial_image_index),
            [0, 1],
          );
          const final = await decode(Buffer.from(events[2]!.b64_json, 'base64'));
          assert.deepEqual([final.width, final.height], [1024, 1024]);
        }),
      );
    }

    it(
      'DALL-E 2: submitted on node 1, polled on node 2, images from both nodes, deleted on node 2',
      body(async () => {
        const submitted = await submit(api1);
        assert.equal(submitted.status, 202, await submitted.clone().text());
        const location = submitted.headers.get('operation-location')!;
        assert.ok(location.startsWith(`${api1.base}/openai/operations/images/`), location);
        const operation = await pollToEnd(on(api2, location));
        assert.equal(operation.status, 'succeeded', JSON.stringify(operation));
        const url = operation.result!.data[0]!.url!;
        for (const node of [api1, api2]) {
          const file = await fetch(on(node, url));
          assert.equal(file.status, 200, on(node, url));
          assert.deepEqual(Buffer.from(await file.arrayBuffer()).subarray(0, 4), PNG_MAGIC);
        }
        const deleted = await fetch(on(api2, location), { method: 'DELETE', headers: { 'api-key': CLUSTER_KEY } });
        assert.equal(deleted.status, 204);
        assert.equal((await getOperation(location)).status, 'deleted');
        for (const node of [api1, api2]) assert.equal((await fetch(on(node, url))).status, 404);
      }),
    );

    it(
      'the Azure python quickstarts (requests) against both API nodes',
      {
        // As test/e2e/python-quickstart.test.ts: skipped without requests and PIL, except under CI.
        skip: pythonReady || process.env.CI ? false : `${PYTHON} lacks requests or PIL (${PYTHON_HINT})`,
      },
      body(async () => {
        assert.ok(pythonReady, `${PYTHON} lacks requests or PIL; install them with: ${PYTHON_HINT}`);
        const scripts = resolve('test/e2e/python');
        const runPython = (script: string, node: ClusterProcess, endpoint: string) => {
          const cwd = tempDir('easel-scale-out-python-');
          dirs.push(cwd);
          return new Promise<{ cwd: string; code: number | null; out: string }>((done, fail) => {
            const child = spawn(PYTHON, [join(scripts, script)], {
              cwd,
              env: {
                PATH: '/usr/bin:/bin',
                HOME: cwd,
                LANG: 'C.UTF-8',
                NO_PROXY: '*',
                AZURE_OPENAI_ENDPOINT: endpoint,
                AZURE_OPENAI_API_KEY: CLUSTER_KEY,
              },
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let out = '';
            child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
            child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
            child.once('error', fail);
            child.once('close', (code) => done({ cwd, code, out: `${node.name}: ${out}` }));
          });
        };
        const runs = await Promise.all([
          runPython('gpt_image_quickstart.py', api1, `${api1.base}/`),
          runPython('dalle3_quickstart.py', api2, api2.base),
          runPython('dalle2_quickstart.py', api1, `${api1.base}/`),
          runPython('gpt_image_quickstart.py', api2, `${api2.base}/`),
          runPython('dalle3_quickstart.py', api1, api1.base),
          runPython('dalle2_quickstart.py', api2, `${api2.base}/`),
        ]);
        for (const run of runs) {
          assert.equal(run.code, 0, run.out);
          const files = readdirSync(run.cwd);
          assert.ok(files.length > 0, run.out);
          for (const file of files) assert.deepEqual(readFileSync(join(run.cwd, file)).subarray(0, 4), PNG_MAGIC);
        }
      }),
    );

    it(
      'a worker killed (SIGKILL) while it runs a DALL-E 2 operation: the operation ends, never stuck non-terminal',
      body(async (t) => {
        const submitted = await submit(api1);
        assert.equal(submitted.status, 202);
        const location = submitted.headers.get('operation-location')!;
        const victim = await until('the operation to run on a worker', async () => {
          const operation = await getOperation(location);
          const busy = await busyWorkers();
          return operation.status === 'running' && busy.length === 1 ? busy[0] : undefined;
        });
        assert.equal((await killOnPurpose(victim)).signal, 'SIGKILL');

        const operation = await pollToEnd(location);
        t.diagnostic(`killed ${victim.name}: the operation ended ${operation.status}`);
        assert.ok(['succeeded', 'failed'].includes(operation.status), JSON.stringify(operation));
        if (operation.status === 'failed') assert.equal(typeof operation.error?.code, 'string');
        else assert.ok(operation.result?.data[0]?.url);
        // Seen from the other API node too.
        assert.equal((await getOperation(on(api2, location))).status, operation.status);
        await replaceKilledWorker();
      }),
    );

    it(
      'a worker killed (SIGKILL) while it runs a sync generation: the client gets its image from the other worker, or a clean error',
      body(async (t) => {
        const sync = generate(api2, 'slow', { response_format: 'b64_json', size: '1024x1024' });
        const victim = await until('the generation to run on a worker', async () => {
          const busy = await busyWorkers();
          return busy.length === 1 ? busy[0] : undefined;
        });
        assert.equal((await killOnPurpose(victim)).signal, 'SIGKILL');

        const answer = await sync;
        t.diagnostic(`killed ${victim.name}: the generation was answered ${answer.status}`);
        if (answer.status === 200) {
          const json = (await answer.json()) as { data: { b64_json: string }[] };
          const image = await decode(Buffer.from(json.data[0]!.b64_json, 'base64'));
          assert.deepEqual([image.width, image.height], [1024, 1024]);
        } else {
          await assertEnvelope(answer, (s) => s >= 500, 'the generation of the killed worker');
        }
        await replaceKilledWorker();
      }),
    );

    it(
      'an API node killed (SIGKILL): the other keeps serving, its links included',
      body(async () => {
        const url = (await client(api2).images.generate({ model: 'dall-e-3', prompt: PROMPT })).data![0]!.url!;
        await killOnPurpose(api2);
        const response = await client(api1).images.generate({ model: 'dall-e-3', prompt: PROMPT });
        assert.ok(response.data![0]!.url);
        // A link made by the dead node works from the live one (same bucket, same signing secret).
        assert.equal((await fetch(on(api1, url))).status, 200);
        assert.equal((await fetch(`${api1.base}/readyz`)).status, 200);
      }),
    );

    it(
      'Redis stopped: clean 503 envelopes while it is down; restarted: serving again without restarting easel',
      body(async () => {
        cluster.interrupt('redis');
        try {
          await assertEnvelope(await generate(api1, 'gpt-image-1', {}), 503, 'a generation while Redis is down');
          await assertEnvelope(await submit(api1), 503, 'a submit while Redis is down');
          // Not ready (the worker registry cannot be read), but alive.
          assert.equal((await fetch(`${api1.base}/readyz`)).status, 503);
          assert.equal((await fetch(`${api1.base}/healthz`)).status, 200);
        } finally {
          cluster.restore('redis');
        }
        // Workers announce themselves again; jobs flow again.
        await cluster.waitForWorkers(2);
        await until('a generation to succeed after Redis is back', async () => {
          const response = await generate(api1, 'dall-e-3', {});
          return response.status === 200 ? true : undefined;
        });
        const operation = await pollToEnd((await submit(api1)).headers.get('operation-location')!);
        assert.equal(operation.status, 'succeeded');
        assertNoneCrashed();
      }),
    );

    it(
      'PostgreSQL stopped: clean 503 envelopes while it is down; restarted: serving again without restarting easel',
      body(async () => {
        await cluster.waitForWorkers(2);
        const before = await pollToEnd((await submit(api1)).headers.get('operation-location')!);
        assert.equal(before.status, 'succeeded');
        cluster.interrupt('postgres');
        try {
          await assertEnvelope(await submit(api1), 503, 'a submit while PostgreSQL is down');
          const poll = await fetch(`${api1.base}/openai/operations/images/${before.id}?api-version=${OPS_VERSION}`, {
            headers: { 'api-key': CLUSTER_KEY },
          });
          await assertEnvelope(poll, 503, 'a poll while PostgreSQL is down');
          // A URL image needs its record: refused in the same envelope, never a hang or a crash.
          await assertEnvelope(await generate(api1, 'dall-e-3', {}), 503, 'a url generation while PostgreSQL is down');
          assert.equal((await fetch(`${api1.base}/healthz`)).status, 200);
        } finally {
          cluster.restore('postgres');
        }
        const operation = await until('a submit to succeed after PostgreSQL is back', async () => {
          const response = await submit(api1);
          return response.status === 202 ? pollToEnd(response.headers.get('operation-location')!) : undefined;
        });
        assert.equal(operation.status, 'succeeded');
        // The data outlived the outage.
        assert.equal(
          (await getOperation(`${api1.base}/openai/operations/images/${before.id}?api-version=${OPS_VERSION}`)).status,
          'succeeded',
        );
        assertNoneCrashed();
      }),
    );

    it(
      'the bucket unreachable (radosgw stopped): clean 503 envelopes, no crash; restarted: serving again',
      body(async () => {
        await cluster.waitForWorkers(2);
        const url = (await client(api1).images.generate({ model: 'dall-e-3', prompt: PROMPT })).data![0]!.url!;
        cluster.interrupt('s3');
        try {
          await assertEnvelope(await fetch(url), 503, 'an image download while the bucket is down');
          await assertEnvelope(await generate(api1, 'dall-e-3', {}), 503, 'a url generation while the bucket is down');
          await assertEnvelope(
            await generate(api1, 'dall-e-3', { response_format: 'b64_json' }),
            503,
            'a b64_json generation while the bucket is down',
          );
          assert.equal((await fetch(`${api1.base}/healthz`)).status, 200);
        } finally {
          cluster.restore('s3');
        }
        await until('a generation to succeed after the bucket is back', async () => {
          const response = await generate(api1, 'dall-e-3', {});
          return response.status === 200 ? true : undefined;
        });
        // The bytes stored before the outage are still served.
        assert.equal((await fetch(url)).status, 200);
        assertNoneCrashed();
      }),
    );
  });
}
