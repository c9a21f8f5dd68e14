/**
 * The worker registry: which generation workers are alive and which of their deployments can serve.
 * A worker announces itself (a heartbeat every workers.heartbeatSeconds) and withdraws on a clean
 * shutdown; an API node asks which workers were heard from within workers.deadAfterSeconds, to answer
 * /readyz and to refuse a job that no live worker could take (errors.noLiveWorker).
 *
 * Two adapters: RedisWorkerRegistry (scale-out, every node shares one Redis) and InProcessWorkerRegistry
 * (embedded: the one process is the worker, and reports its deployments' readiness as it is now).
 * See docs/scale-out.md, "Workers and readiness".
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

import { Redis } from 'ioredis';

import { connectionProblem, redactUrl } from '../config/service-urls.ts';

/** One deployment as a worker reports it. */
export interface DeploymentReadiness {
  name: string;
  /** It can take jobs now. */
  ready: boolean;
  /**
   * Why it cannot serve, set only when it failed for good (a missing model folder). A deployment that is
   * not ready and has no reason is still loading.
   */
  reason?: string;
}

/** What a worker announces at each heartbeat. */
export interface WorkerAnnouncement {
  /** Unique per process (newWorkerId()); a restarted worker is a new worker. */
  id: string;
  host: string;
  pid: number;
  /** Its metrics and health port, if it listens on one. */
  port: number | null;
  deployments: DeploymentReadiness[];
}

/** A live worker as the registry last heard from it. */
export interface LiveWorker extends WorkerAnnouncement {
  /** When it last announced itself, in ms since the epoch (its own clock). */
  seenAt: number;
}

/** How many live workers have a deployment in each state. */
export interface DeploymentWorkers {
  ready: number;
  loading: number;
  unavailable: number;
}

export interface LiveWorkers {
  /** Every deployment some live worker has; a deployment no live worker has is absent (see workersFor). */
  perDeployment: Map<string, DeploymentWorkers>;
  workers: LiveWorker[];
}

/** The worker side. */
export interface WorkerAnnouncer {
  /** Record (or refresh) this worker; it counts as alive for deadAfterSeconds from now. */
  announce(worker: WorkerAnnouncement): Promise<void>;
  /** Remove the workers this registry announced, at once (a clean shutdown). */
  withdraw(): Promise<void>;
}

/** The API side. */
export interface WorkerDirectory {
  /** The workers heard from within deadAfterSeconds. Rejects with WorkerRegistryError when it cannot tell. */
  liveWorkers(): Promise<LiveWorkers>;
}

export interface WorkerRegistry extends WorkerAnnouncer, WorkerDirectory {
  /** Releases the connection (it does not withdraw: call withdraw first on a clean shutdown). */
  close(): Promise<void>;
}

/** The registry cannot be reached or read; the message says why, without credentials. */
export class WorkerRegistryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkerRegistryError';
  }
}

/** A fresh worker id: the host, the process and a random part, readable in logs and /readyz. */
export function newWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** The counts of workers per deployment and state. */
export function countByDeployment(workers: readonly WorkerAnnouncement[]): Map<string, DeploymentWorkers> {
  const counts = new Map<string, DeploymentWorkers>();
  for (const worker of workers) {
    for (const d of worker.deployments) {
      let entry = counts.get(d.name);
      if (!entry) counts.set(d.name, (entry = { ready: 0, loading: 0, unavailable: 0 }));
      if (d.ready) entry.ready++;
      else if (d.reason !== undefined) entry.unavailable++;
      else entry.loading++;
    }
  }
  return counts;
}

/** A deployment's counts; zeros when no live worker has it. */
export function workersFor(live: LiveWorkers, deployment: string): DeploymentWorkers {
  return live.perDeployment.get(deployment) ?? { ready: 0, loading: 0, unavailable: 0 };
}

export interface HeartbeatOptions {
  announcer: WorkerAnnouncer;
  /** What to announce, asked afresh at every beat (readiness changes as models load). */
  describe: () => WorkerAnnouncement;
  intervalSeconds: number;
  /** A beat that failed (Redis away): the next beat tries again; the worker keeps running. */
  onError: (error: unknown) => void;
}

/**
 * Announces at once, then every intervalSeconds after the previous beat finished (beats never overlap).
 * `stop()` ends the beats and withdraws; it never rejects (a failure goes to onError).
 */
export function startHeartbeat(options: HeartbeatOptions): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  const beat = () => {
    // describe() throwing counts as a failed beat too: nothing here may throw out of a timer.
    current = Promise.resolve()
      .then(() => options.announcer.announce(options.describe()))
      .catch(options.onError)
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(beat, options.intervalSeconds * 1000);
        timer.unref();
      });
  };
  beat();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
      await options.announcer.withdraw().catch(options.onError);
    },
  };
}

export interface RedisWorkerRegistryOptions {
  /** redis:// or rediss:// (redis.url). */
  url: string;
  /** workers.deadAfterSeconds: a worker's record lives this long after each announcement. */
  deadAfterSeconds: number;
  /** Prefix of the registry's keys (default "easel"), so deployments can share a Redis. */
  keyPrefix?: string;
  /** Longest one call waits for Redis before it rejects (default 2000 ms). */
  commandTimeoutMs?: number;
}

/**
 * Reads the live workers and forgets the dead in one step: for each id in the set, its record if the
 * record still exists, else the id leaves the set. Atomic, so a worker that announces meanwhile is never
 * dropped from the set while its record lives. The record keys are derived from the set's members,
 * which standalone Redis allows (Redis Cluster would need them declared).
 */
const READ_LIVE = `
local ids = redis.call('SMEMBERS', KEYS[1])
local live = {}
for _, id in ipairs(ids) do
  local record = redis.call('GET', ARGV[1] .. id)
  if record then
    live[#live + 1] = record
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return live
`;

/**
 * The registry in Redis: one string key per worker, `<prefix>:registry:worker:<id>`, holding its announcement as
 * JSON and expiring deadAfterSeconds after each announcement (SET … PX), plus one set, `<prefix>:registry:workers`,
 * of the ids, so reading never walks the keyspace (no KEYS or SCAN). Redis's own clock expires the
 * records, so a worker's death does not depend on the nodes' clocks agreeing, and a dead worker costs
 * nothing once a read has pruned it: each read costs O(live workers + those that died since the last read).
 *
 * The connection reconnects by itself; while Redis is away, calls reject at once with WorkerRegistryError
 * (no offline queue), and work again once it is back.
 */
export class RedisWorkerRegistry implements WorkerRegistry {
  readonly #redis: Redis;
  readonly #setKey: string;
  readonly #recordPrefix: string;
  readonly #ttlMs: number;
  readonly #announced = new Set<string>();
  readonly #where: string;

  private constructor(redis: Redis, options: RedisWorkerRegistryOptions, where: string) {
    this.#redis = redis;
    const prefix = options.keyPrefix ?? 'easel';
    this.#setKey = `${prefix}:registry:workers`;
    this.#recordPrefix = `${prefix}:registry:worker:`;
    this.#ttlMs = options.deadAfterSeconds * 1000;
    this.#where = where;
  }

  /** Connects (rejecting with WorkerRegistryError when Redis cannot be reached) and returns the registry. */
  static async open(options: RedisWorkerRegistryOptions): Promise<RedisWorkerRegistry> {
    const where = redactUrl(options.url);
    const timeout = options.commandTimeoutMs ?? 2000;
    const redis = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: timeout,
      commandTimeout: timeout,
      // Reconnect for ever, at most a second apart: the registry is useful again as soon as Redis is back.
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    // Connection errors are reported through the calls that fail; without a listener ioredis would print them.
    // The socket's own error (connection refused …) says more than connect()'s "Connection is closed".
    let socketError: unknown = null;
    const listener = (error: unknown) => (socketError = error);
    redis.on('error', listener);
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      const cause = socketError ?? error;
      throw new WorkerRegistryError(`cannot reach the worker registry at ${where}: ${connectionProblem(cause)}`, {
        cause,
      });
    }
    redis.off('error', listener);
    redis.on('error', () => undefined);
    return new RedisWorkerRegistry(redis, options, where);
  }

  async announce(worker: WorkerAnnouncement): Promise<void> {
    const record: LiveWorker = { ...worker, seenAt: Date.now() };
    await this.#call('announce this worker to', () =>
      this.#redis
        .multi()
        .set(this.#recordPrefix + worker.id, JSON.stringify(record), 'PX', this.#ttlMs)
        .sadd(this.#setKey, worker.id)
        .exec()
        .then(checkTransaction),
    );
    this.#announced.add(worker.id);
  }

  async withdraw(): Promise<void> {
    const ids = [...this.#announced];
    if (ids.length === 0) return;
    await this.#call('withdraw from', () =>
      this.#redis
        .multi()
        .del(...ids.map((id) => this.#recordPrefix + id))
        .srem(this.#setKey, ...ids)
        .exec()
        .then(checkTransaction),
    );
    this.#announced.clear();
  }

  async liveWorkers(): Promise<LiveWorkers> {
    const records = await this.#call(
      'read',
      () => this.#redis.eval(READ_LIVE, 1, this.#setKey, this.#recordPrefix) as Promise<string[]>,
    );
    const workers = records.flatMap((text) => {
      const worker = parseRecord(text);
      // A record that is not a worker (written by another version, or by hand) is left out, not fatal.
      return worker ? [worker] : [];
    });
    workers.sort((a, b) => a.id.localeCompare(b.id));
    return { perDeployment: countByDeployment(workers), workers };
  }

  async close(): Promise<void> {
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new WorkerRegistryError(
        `cannot ${what} the worker registry at ${this.#where}: ${connectionProblem(error)}`,
        {
          cause: error,
        },
      );
    }
  }
}

/** MULTI … EXEC answers null when aborted, and an error per failed command. */
function checkTransaction(results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('the transaction was aborted');
  const failed = results.find(([error]) => error !== null);
  if (failed) throw failed[0]!;
}

function parseRecord(text: string): LiveWorker | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const w = value as Partial<LiveWorker>;
  const valid =
    typeof w.id === 'string' &&
    typeof w.host === 'string' &&
    typeof w.pid === 'number' &&
    (w.port === null || typeof w.port === 'number') &&
    typeof w.seenAt === 'number' &&
    Array.isArray(w.deployments) &&
    w.deployments.every(
      (d: Partial<DeploymentReadiness> | null) =>
        typeof d === 'object' &&
        d !== null &&
        typeof d.name === 'string' &&
        typeof d.ready === 'boolean' &&
        (d.reason === undefined || typeof d.reason === 'string'),
    );
  if (!valid) return null;
  return {
    id: w.id!,
    host: w.host!,
    pid: w.pid!,
    port: w.port!,
    seenAt: w.seenAt!,
    deployments: w.deployments!.map((d) => ({
      name: d.name,
      ready: d.ready,
      ...(d.reason !== undefined ? { reason: d.reason } : {}),
    })),
  };
}

/**
 * Embedded mode: the one process is the worker. It reports its deployments' readiness as it is at each
 * call (the callback), so /readyz never lags behind a model that finished loading.
 */
export class InProcessWorkerRegistry implements WorkerRegistry {
  readonly #readiness: () => DeploymentReadiness[];
  #self: Omit<WorkerAnnouncement, 'deployments'>;
  #withdrawn = false;

  constructor(
    readiness: () => DeploymentReadiness[],
    self: Omit<WorkerAnnouncement, 'deployments'> = { id: 'embedded', host: hostname(), pid: process.pid, port: null },
  ) {
    this.#readiness = readiness;
    this.#self = self;
  }

  /** Takes the worker's identity; its deployments' readiness always comes from the callback. */
  announce(worker: WorkerAnnouncement): Promise<void> {
    this.#self = { id: worker.id, host: worker.host, pid: worker.pid, port: worker.port };
    this.#withdrawn = false;
    return Promise.resolve();
  }

  /** Shutting down: the process no longer counts as a worker. */
  withdraw(): Promise<void> {
    this.#withdrawn = true;
    return Promise.resolve();
  }

  liveWorkers(): Promise<LiveWorkers> {
    if (this.#withdrawn) return Promise.resolve({ perDeployment: new Map(), workers: [] });
    try {
      const worker: LiveWorker = { ...this.#self, deployments: this.#readiness(), seenAt: Date.now() };
      return Promise.resolve({ perDeployment: countByDeployment([worker]), workers: [worker] });
    } catch (error) {
      return Promise.reject(new WorkerRegistryError(`cannot tell this process's readiness: ${String(error)}`));
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
