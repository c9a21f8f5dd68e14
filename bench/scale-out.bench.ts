// Scale-out figures, with real processes from dist/ (run `npm run build` first; `npm run bench --
// --preset scale-out` does) and real services from scripts/services (PostgreSQL, Redis, radosgw):
//   - the latency the distributed path adds to a placeholder 256×256 generation: one `easel serve`
//     (embedded) against one API node and one worker, each a separate process on loopback, their
//     requests interleaved so that both see the machine as it is at that moment; and where the
//     distributed path's time goes, from the jobs' own timestamps in Redis;
//   - throughput with 1 and 2 workers behind one API node: placeholder 1024×1024 pictures (CPU-bound:
//     encoding on the workers) and simulated 200 ms jobs (a slow placeholder deployment at 256×256,
//     where the workers' slots are the limit: 2 each, queue.concurrency's default);
//   - /healthz p99 and event-loop delay of an API node while it is loaded with generations, with the workers
//     on the same cores and with the workers at the lowest CPU priority (as on machines of their own);
//   - how long a job of a worker killed with SIGKILL takes to come back as an answer, with the default
//     lock and stalled-check timings (queue.lockSeconds 10, queue.stalledCheckSeconds 5).
// Run: npx tsx bench/scale-out.bench.ts → one JSON line per figure.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Redis } from 'ioredis';

import { CLUSTER_KEY, freePort, startCluster, until } from '../test/helpers/cluster.ts';

const RUNS = 200;
const THROUGHPUT_JOBS = 60;
const CLIENTS = 8;
const RECOVERY_TRIALS = 3;

const DEPLOYMENTS = [
  { name: 'dall-e-2', model: 'dall-e-2' },
  { name: 'dall-e-3', model: 'dall-e-3' },
  { name: 'gpt-image-1', model: 'gpt-image-1' },
  // A job of 4 × 50 ms at 256×256: a model's time without its CPU.
  { name: 'simulated', model: 'dall-e-2', placeholder: { stepMs: 50 } },
  // A job of 4 × 1 s, long enough to kill its worker in the middle.
  { name: 'slow', model: 'dall-e-3', placeholder: { stepMs: 1000 } },
];
const CONFIG = { deployments: DEPLOYMENTS, queue: { maxWaiting: 1024 } };

function summary(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
  return { p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), runs: times.length };
}

function print(figure: object) {
  console.log(JSON.stringify({ bench: 'scale-out', ...figure }));
}

async function generate(base: string, deployment: string, body: object): Promise<void> {
  const response = await fetch(`${base}/openai/deployments/${deployment}/images/generations?api-version=2024-10-21`, {
    method: 'POST',
    headers: { 'api-key': CLUSTER_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a lighthouse at dawn', ...body }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${deployment}: ${response.status} ${text}`);
}

const small = (seed: number) => ({ size: '256x256', seed });

/**
 * Sequential generations against both servers in turn (which goes first alternates), so a change in
 * the machine's load while they run reaches both alike. Returns each one's times and the wall-clock
 * span of each distributed request (for `whereTheTimeGoes`).
 */
async function latency(embedded: string, distributed: string) {
  for (let i = 0; i < 10; i++) {
    await generate(embedded, 'dall-e-2', small(i));
    await generate(distributed, 'dall-e-2', small(i));
  }
  const times = { embedded: [] as number[], distributed: [] as number[] };
  const spans: { sent: number; answered: number }[] = [];
  const timed = async (base: string, seed: number) => {
    const started = performance.now();
    await generate(base, 'dall-e-2', small(seed));
    return { started, ms: performance.now() - started };
  };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? (['embedded', 'distributed'] as const) : (['distributed', 'embedded'] as const);
    for (const which of order) {
      const { started, ms } = await timed(which === 'embedded' ? embedded : distributed, 1000 + i);
      times[which].push(ms);
      if (which === 'distributed')
        spans.push({ sent: performance.timeOrigin + started, answered: performance.timeOrigin + started + ms });
    }
  }
  return { times, spans };
}

/**
 * Splits the distributed requests' time with their jobs' timestamps in Redis (BullMQ's `timestamp` when
 * the API node made the job, `processedOn` when a worker took it, `finishedOn` when it ended; wall
 * clocks in milliseconds, one machine): request → job made (HTTP, checks, admission), job made → taken,
 * the job itself (placeholder, PNG, bucket and record), job ended → answer (the event back, the reply).
 * The last RUNS jobs of the deployment, in admission order, are the timed requests in order.
 */
async function whereTheTimeGoes(redisUrl: string, spans: { sent: number; answered: number }[]) {
  const redis = new Redis(redisUrl);
  try {
    const jobs: { number: number; made: number; taken: number; ended: number }[] = [];
    for (const key of await redis.keys('easel:q:dall-e-2:j*')) {
      if (key.split(':').length !== 4) continue; // a job's lock or logs, not the job
      const job = await redis.hmget(key, 'name', 'timestamp', 'processedOn', 'finishedOn');
      if (job.every((field) => field !== null)) {
        const [number, made, taken, ended] = job.map(Number) as [number, number, number, number];
        jobs.push({ number, made, taken, ended });
      }
    }
    jobs.sort((a, b) => a.number - b.number);
    const timed = jobs.slice(-spans.length);
    const mean = (part: (job: (typeof timed)[number], span: (typeof spans)[number]) => number) =>
      Math.round((timed.reduce((sum, job, i) => sum + part(job, spans[i]!), 0) / timed.length) * 10) / 10;
    print({
      case: 'dall-e-2 256x256 url, distributed: where the time goes (means)',
      request_to_job_ms: mean((job, span) => job.made - span.sent),
      job_to_worker_ms: mean((job) => job.taken - job.made),
      job_ms: mean((job) => job.ended - job.taken),
      job_end_to_answer_ms: mean((job, span) => span.answered - job.ended),
      runs: timed.length,
    });
  } finally {
    redis.disconnect();
  }
}

/** Jobs per second: `jobs` generations sent by `CLIENTS` clients at once. */
async function throughput(base: string, deployment: string, body: object, jobs = THROUGHPUT_JOBS): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < jobs) await generate(base, deployment, { ...body, seed: next++ });
    }),
  );
  return Math.round((jobs / ((performance.now() - started) / 1000)) * 100) / 100;
}

// --- The embedded baseline: one `easel serve` process, placeholder engine, its own data directory. It
// stays up beside the cluster for the interleaved latency figures.
const dir = mkdtempSync(join(tmpdir(), 'easel-bench-scale-out-'));
writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
const port = await freePort();
const embedded: ChildProcess = spawn(process.execPath, [resolve('dist/cli/index.js'), 'serve'], {
  env: {
    PATH: process.env.PATH ?? '',
    HOST: '127.0.0.1',
    PORT: String(port),
    EASEL_DATA_DIR: join(dir, 'data'),
    EASEL_CONFIG: join(dir, 'config.json'),
    EASEL_API_KEYS: CLUSTER_KEY,
    EASEL_LOG_LEVEL: 'warn',
    EASEL_IMAGE_CLASSIFIER: 'none',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const embeddedBase = `http://127.0.0.1:${port}`;
const stopEmbedded = () => {
  embedded.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.once('exit', stopEmbedded); // whatever fails below, no server is left behind
await until('the embedded server', async () => ((await fetch(`${embeddedBase}/readyz`)).ok ? true : undefined));

/**
 * /healthz of an API node while CLIENTS clients keep the workers busy through it, and the node's own
 * event-loop delay over the same time (prom-client resets its histogram at each scrape of /metrics).
 */
async function healthUnderLoad(api: { base: string }, setting: string): Promise<void> {
  const loopDelayP99 = async () => {
    const text = await (await fetch(`${api.base}/metrics`)).text();
    return Number(/^easel_nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1]);
  };
  await loopDelayP99();
  let loading = true;
  const load = Array.from({ length: CLIENTS }, async (_, i) => {
    let seed = i * 100_000;
    while (loading) await generate(api.base, 'dall-e-3', { seed: seed++ });
  });
  const health: number[] = [];
  for (let i = 0; i < 300; i++) {
    const started = performance.now();
    await fetch(`${api.base}/healthz`).then((r) => r.arrayBuffer());
    health.push(performance.now() - started);
    await new Promise((r) => setTimeout(r, 5));
  }
  loading = false;
  await Promise.all(load);
  print({
    case: `API node /healthz during generation (${CLIENTS} clients, 2 workers, ${setting})`,
    ...summary(health),
    event_loop_delay_p99_ms: Math.round((await loopDelayP99()) * 10_000) / 10,
  });
}

// --- The cluster: one API node, then one and two workers.
const start = await startCluster({ apis: 1, workers: 1, config: CONFIG });
if (!start.ok) {
  stopEmbedded();
  console.error(`scale-out bench: ${start.missing}`);
  process.exit(3);
}
const cluster = start.cluster;
try {
  const api = cluster.apis[0]!;
  const { times, spans } = await latency(embeddedBase, api.base);
  stopEmbedded();
  const embeddedSummary = summary(times.embedded);
  const distributedSummary = summary(times.distributed);
  print({ case: 'dall-e-2 256x256 url, embedded (easel serve)', ...embeddedSummary });
  print({ case: 'dall-e-2 256x256 url, distributed (1 API node, 1 worker)', ...distributedSummary });
  print({
    case: 'added by the distributed path',
    p50_ms: Math.round((distributedSummary.p50_ms - embeddedSummary.p50_ms) * 10) / 10,
    p99_ms: Math.round((distributedSummary.p99_ms - embeddedSummary.p99_ms) * 10) / 10,
  });
  await whereTheTimeGoes(cluster.services.redis.url, spans);

  const rates = async (workers: number) => {
    await throughput(api.base, 'dall-e-3', {}, 16); // warm-up
    print({
      case: `throughput, dall-e-3 1024x1024 url, ${workers} worker(s), ${CLIENTS} clients`,
      jobs_per_s: await throughput(api.base, 'dall-e-3', {}),
    });
    print({
      case: `throughput, simulated 200 ms jobs, ${workers} worker(s), ${CLIENTS} clients`,
      jobs_per_s: await throughput(api.base, 'simulated', { size: '256x256' }),
    });
  };
  await rates(1);
  await cluster.startWorker();
  await cluster.waitForWorkers(2);
  await rates(2);

  // /healthz while CLIENTS clients keep both workers busy through this API node: first with the workers
  // sharing the machine's cores with it as equals, then with the workers at the lowest CPU priority, which
  // is how an API node runs where workers have machines of their own (on this small machine, the
  // workers' 1024² encodes otherwise take the cores the API node needs to answer).
  await healthUnderLoad(api, 'workers on the same cores');
  for (const worker of cluster.liveWorkers()) await cluster.kill(worker, 'SIGTERM');
  for (let i = 0; i < 2; i++) await cluster.startWorker({}, { nice: 19 });
  await cluster.waitForWorkers(2);
  await healthUnderLoad(api, 'workers at nice 19, as on machines of their own');

  // A worker killed mid-job: from the kill to the job's answer (its 4 s of work run again elsewhere).
  const takenOver: number[] = [];
  const recoveries: number[] = [];
  for (let trial = 0; trial < RECOVERY_TRIALS; trial++) {
    const answer = generate(api.base, 'slow', { response_format: 'b64_json', size: '1024x1024', seed: trial });
    const victim = await until(
      'the slow job to run on a worker',
      async () => {
        for (const worker of cluster.liveWorkers()) {
          const state = (await (await fetch(`${worker.base}/readyz`)).json()) as { running?: number };
          if ((state.running ?? 0) > 0) return worker;
        }
        return undefined;
      },
      30_000,
      20,
    );
    const killed = performance.now();
    await cluster.kill(victim);
    await until(
      'another worker to take the job over',
      async () => {
        for (const worker of cluster.liveWorkers()) {
          const state = (await (await fetch(`${worker.base}/readyz`)).json()) as { running?: number };
          if ((state.running ?? 0) > 0) return true;
        }
        return undefined;
      },
      120_000,
      20,
    );
    takenOver.push(performance.now() - killed);
    await answer;
    recoveries.push(performance.now() - killed);
    await cluster.startWorker();
    await cluster.waitForWorkers(2);
  }
  print({
    case: 'a killed worker: from SIGKILL to its job running on another worker (lock 10 s, stalled check 5 s)',
    ...summary(takenOver),
    mean_ms: Math.round(takenOver.reduce((a, b) => a + b, 0) / takenOver.length),
  });
  print({
    case: 'a killed worker: from SIGKILL to the answer of its job (4 s job, lock 10 s, stalled check 5 s)',
    ...summary(recoveries),
    mean_ms: Math.round(recoveries.reduce((a, b) => a + b, 0) / recoveries.length),
  });
} finally {
  stopEmbedded();
  await cluster.close();
}
