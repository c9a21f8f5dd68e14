// A scale-out cluster of real processes for end-to-end tests and benchmarks: PostgreSQL, Redis and an
// S3 bucket (radosgw) from scripts/services, then API nodes (`easel serve --role api`) and generation
// workers (`easel worker`) spawned from the compiled dist/cli/index.js, each on its own free port of
// 127.0.0.1. Everything started here is stopped by close(), and by the process's exit if a caller
// never got there (a test that threw, a runner that was interrupted).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { type RunningService, type ServiceName, startService } from './services.ts';

/** The compiled command line, as `npx easel` runs it. */
const CLI = resolve(import.meta.dirname, '../../dist/cli/index.js');

export const CLUSTER_KEY = 'cluster-test-key-0123456789abcdef';
/** The deployments every node of the cluster has unless the caller lists its own (placeholder engine). */
export const CLUSTER_DEPLOYMENTS = ['dall-e-2', 'dall-e-3', 'gpt-image-1'];

export type Role = 'api' | 'worker';

export interface ClusterProcess {
  role: Role;
  /** `api-1`, `worker-2` …: in the order started, for messages. */
  name: string;
  port: number;
  /** http://127.0.0.1:PORT, no trailing slash. */
  base: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

export interface ClusterOptions {
  apis?: number;
  workers?: number;
  /** The EASEL_CONFIG file's contents, shared by every process (deployments, queue and worker timings …). */
  config?: Record<string, unknown>;
  /** Variables added to every process's environment (after the cluster's own). */
  env?: Record<string, string>;
  /** Deployments the readiness wait expects on every API node (default: those of `config`, else the defaults). */
  deployments?: string[];
}

export interface Cluster {
  services: Record<ServiceName, RunningService>;
  apis: ClusterProcess[];
  workers: ClusterProcess[];
  /** The variables every process gets: the services, the key, the signing secret, EASEL_CONFIG. */
  env: Record<string, string>;
  deployments: string[];
  startApi(env?: Record<string, string>): Promise<ClusterProcess>;
  /**
   * `nice`: the worker runs at that scheduling niceness (`nice -n`), so that on one small machine its
   * CPU work yields to the API nodes, as if it ran on a machine of its own (the benchmark uses it).
   */
  startWorker(env?: Record<string, string>, options?: { nice?: number }): Promise<ClusterProcess>;
  /** Sends `signal` (SIGKILL by default) and waits until the process is gone. */
  kill(
    process: ClusterProcess,
    signal?: NodeJS.Signals,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The API nodes and workers still running. */
  liveApis(): ClusterProcess[];
  liveWorkers(): ClusterProcess[];
  /**
   * Waits until every running API node's /readyz counts exactly `count` workers with each deployment
   * ready (default: the workers still running).
   */
  waitForWorkers(count?: number, deadlineMs?: number): Promise<void>;
  /**
   * Takes a service down, as an outage would, and `restore` brings it back on the same port:
   * PostgreSQL stops (fast shutdown) and starts again on its data; the S3 gateway (radosgw) is killed
   * and started again, the Ceph cluster behind it and so the bucket's objects staying; Redis stops and
   * starts empty (the throwaway server keeps nothing on disk: the queue's jobs and the worker
   * registry are lost, as after a restart of a Redis without persistence).
   */
  interrupt(service: ServiceName): void;
  restore(service: ServiceName): void;
  /** Every process's output, for a failure message. */
  logs(): string;
  close(): Promise<void>;
}

export type ClusterStart = { ok: true; cluster: Cluster } | { ok: false; missing: string };

/** Polls `probe` until it returns something other than undefined; fails after `deadlineMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  deadlineMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${deadlineMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await sleep(everyMs);
  }
}

/** A port of 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 90_000 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stderr}`);
  }
}

/** PostgreSQL's tools, as scripts/services/postgres.sh runs them (as the postgres user when root). */
function pgCtl(args: string[]): void {
  const bin = readdirSync('/usr/lib/postgresql')
    .sort((a, b) => Number(a) - Number(b))
    .map((v) => `/usr/lib/postgresql/${v}/bin/pg_ctl`)
    .at(-1)!;
  if (process.getuid?.() === 0) run('runuser', ['-u', 'postgres', '--', bin, ...args]);
  else run(bin, args);
}

function interrupt(name: ServiceName, service: RunningService): void {
  if (name === 'redis') return service.halt();
  if (name === 'postgres') return pgCtl(['-D', join(service.dir, 'data'), '-m', 'fast', '-w', 'stop']);
  const pid = Number(readFileSync(join(service.dir, 'run', 'client.rgw.a.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  // The gateway is gone once its port refuses connections.
  run('bash', ['-c', `for i in $(seq 100); do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.1; done; exit 1`]);
}

function restore(name: ServiceName, service: RunningService): void {
  if (name === 'redis') return service.resume();
  const port = new URL(service.url).port;
  if (name === 'postgres') {
    // The options scripts/services/postgres.sh starts it with.
    const options = `-p ${port} -k ${service.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    return pgCtl([
      '-D',
      join(service.dir, 'data'),
      '-l',
      join(service.dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      '-o',
      options,
      'start',
    ]);
  }
  run('radosgw', ['-c', join(service.dir, 'ceph.conf'), '-n', 'client.rgw.a']);
  run('bash', [
    '-c',
    `for i in $(seq 600); do curl -sf -o /dev/null ${service.url}/ && exit 0; sleep 0.1; done; exit 1`,
  ]);
}

/**
 * How many live workers an API node's /readyz counts with `deployment` ready. The body lists each
 * deployment with its workers' counts (`workers: { ready, loading, unavailable }`).
 */
export function readyWorkers(body: unknown, deployment: string): number {
  const entry = (body as { deployments?: Record<string, unknown> } | null)?.deployments?.[deployment] as
    { workers?: { ready?: unknown } | number; ready?: unknown } | undefined;
  if (!entry) return 0;
  if (typeof entry.workers === 'object' && typeof entry.workers?.ready === 'number') return entry.workers.ready;
  if (typeof entry.workers === 'number') return entry.workers;
  if (typeof entry.ready === 'number') return entry.ready;
  return 0;
}

/**
 * Starts the three services, then the API nodes and workers, and waits until every API node sees
 * every worker ready. When a service's package is missing it answers `{ ok: false, missing }`
 * (services.ts's reportMissingService then fails the suite under CI, and skips it elsewhere).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<ClusterStart> {
  const started: RunningService[] = [];
  const processes: ClusterProcess[] = [];
  const base = mkdtempSync(join(tmpdir(), 'easel-cluster-'));
  chmodSync(base, 0o711);
  let closed = false;

  // Last resort: a runner that exits without calling close() leaves no server behind.
  const onExit = () => {
    for (const p of processes) if (p.running()) p.child.kill('SIGKILL');
    for (const s of started) s.stop();
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const services: Partial<Record<ServiceName, RunningService>> = {};
  try {
    for (const name of ['redis', 'postgres', 's3'] as const) {
      const start = startService(name);
      if (!start.ok) {
        onExit();
        process.removeListener('exit', onExit);
        return { ok: false, missing: start.missing };
      }
      started.push(start.service);
      services[name] = start.service;
    }
  } catch (error) {
    onExit();
    process.removeListener('exit', onExit);
    throw error;
  }
  const s3 = services.s3!;

  const configFile = join(base, 'config.json');
  writeFileSync(configFile, JSON.stringify(options.config ?? {}));
  const configured = (options.config?.deployments as { name: string }[] | undefined)?.map((d) => d.name);
  const deployments = options.deployments ?? configured ?? CLUSTER_DEPLOYMENTS;

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    HOST: '127.0.0.1',
    EASEL_LOG_LEVEL: 'warn',
    EASEL_CONFIG: configFile,
    EASEL_API_KEYS: CLUSTER_KEY,
    EASEL_SIGNING_SECRET: 'cluster-signing-secret-0123456789abcdef',
    EASEL_REDIS_URL: services.redis!.url,
    EASEL_DATABASE_URL: services.postgres!.url,
    EASEL_S3_ENDPOINT: s3.url,
    EASEL_S3_BUCKET: 'easel-cluster',
    EASEL_S3_REGION: s3.env.AWS_REGION ?? 'us-east-1',
    EASEL_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID ?? '',
    AWS_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY ?? '',
    EASEL_IMAGE_CLASSIFIER: 'none',
    ...options.env,
  };

  const counters: Record<Role, number> = { api: 0, worker: 0 };
  async function spawnRole(role: Role, extra: Record<string, string> = {}, nice = 0): Promise<ClusterProcess> {
    const port = await freePort();
    const name = `${role}-${++counters[role]}`;
    const dataDir = join(base, name);
    mkdirSync(dataDir);
    const args = role === 'api' ? ['serve', '--role', 'api'] : ['worker'];
    // nice execs node in place: the child's pid is node's, so signals reach it.
    const [command, commandArgs] =
      nice === 0 ? [process.execPath, [CLI, ...args]] : ['nice', ['-n', String(nice), process.execPath, CLI, ...args]];
    const child = spawn(command, commandArgs, {
      env: { ...env, EASEL_DATA_DIR: dataDir, PORT: String(port), ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    const running = () => child.exitCode === null && child.signalCode === null;
    const proc: ClusterProcess = {
      role,
      name,
      port,
      base: `http://127.0.0.1:${port}`,
      child,
      stdout: () => out,
      stderr: () => err,
      exited,
      running,
    };
    processes.push(proc);
    await until(
      `${name} to answer /healthz`,
      async () => {
        if (!running()) throw new Error(`${name} exited before answering.\nstdout:\n${out}\nstderr:\n${err}`);
        try {
          return (await fetch(`${proc.base}/healthz`)).ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      60_000,
    ).catch((error: unknown) => {
      if (running()) child.kill('SIGKILL');
      throw error;
    });
    return proc;
  }

  const liveApis = () => processes.filter((p) => p.role === 'api' && p.running());
  const liveWorkers = () => processes.filter((p) => p.role === 'worker' && p.running());

  const cluster: Cluster = {
    services: services as Record<ServiceName, RunningService>,
    get apis() {
      return processes.filter((p) => p.role === 'api');
    },
    get workers() {
      return processes.filter((p) => p.role === 'worker');
    },
    env,
    deployments,
    startApi: (extra) => spawnRole('api', extra),
    startWorker: (extra, options) => spawnRole('worker', extra, options?.nice),
    async kill(proc, signal = 'SIGKILL') {
      if (proc.running()) proc.child.kill(signal);
      return proc.exited;
    },
    liveApis,
    liveWorkers,
    async waitForWorkers(count, deadlineMs = 60_000) {
      const expected = count ?? liveWorkers().length;
      for (const api of liveApis()) {
        await until(
          `${api.name}'s /readyz to count ${expected} ready worker(s) for ${deployments.join(', ')}`,
          async () => {
            const response = await fetch(`${api.base}/readyz`);
            const body = (await response.json()) as unknown;
            return deployments.every((d) => readyWorkers(body, d) === expected) ? true : undefined;
          },
          deadlineMs,
          200,
        );
      }
    },
    interrupt: (name) => interrupt(name, services[name]!),
    restore: (name) => restore(name, services[name]!),
    logs() {
      return processes
        .map((p) => `--- ${p.name} (${p.running() ? 'running' : 'ended'})\n${p.stdout()}${p.stderr()}`)
        .join('\n');
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const p of processes) if (p.running()) p.child.kill('SIGKILL');
      await Promise.all(processes.map((p) => p.exited));
      for (const s of started) s.stop();
      rmSync(base, { recursive: true, force: true });
      process.removeListener('exit', onExit);
    },
  };

  try {
    // API nodes first: workers that start later are then seen arriving, as in a rolling start.
    await Promise.all(Array.from({ length: options.apis ?? 2 }, () => cluster.startApi()));
    await Promise.all(Array.from({ length: options.workers ?? 2 }, () => cluster.startWorker()));
    await cluster.waitForWorkers(options.workers ?? 2);
  } catch (error) {
    const logs = cluster.logs();
    await cluster.close();
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  }
  return { ok: true, cluster };
}
