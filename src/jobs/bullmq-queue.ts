/**
 * The job queue on Redis (scale-out): BullMQ queues shared by API nodes (BullmqProducer, here) and
 * generation workers (BullmqConsumer, bullmq-consumer.ts). What both sides share lives here too: the
 * options, the Redis keys, the Lua scripts and how failures travel. Design and timings:
 * docs/scale-out.md, "Queue on Redis (BullMQ)".
 *
 * One BullMQ queue per deployment, so a worker takes jobs only of the deployments it has loaded.
 * Results and progress come back through one QueueEvents per deployment per producer (a blocking
 * XREAD on the queue's event stream), shared by all its jobs; cancellation goes out on a pub/sub
 * channel that the consumers subscribe to.
 */
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

import { connectionProblem } from '../config/service-urls.ts';
import { ApiError, errors } from '../contract/errors.ts';
import {
  type AddOptions,
  type JobData,
  JobFailedError,
  type JobFailure,
  type JobProducer,
  type JobProgress,
  type JobResult,
  QueueFullError,
} from './job-contract.ts';
import { failureOf, JobCanceledError, QueueClosedError, toJobFailure } from './job-failure.ts';

/** Options both sides share. */
export interface BullmqConnectionOptions {
  /** `redis://…` URL, or ioredis options (host, port, password, tls …). */
  redis: string | RedisOptions;
  /** First part of every Redis key and channel; deployments sharing one Redis use different ones. */
  prefix?: string;
  /** Called with errors that reach no caller (connection drops, a failed lock renewal); default: stderr. */
  onError?: (error: Error, context: string) => void;
}

export interface BullmqProducerOptions extends BullmqConnectionOptions {
  /** Jobs waiting (not started) per deployment beyond the workers' free slots; one more gets QueueFullError. */
  maxWaiting: number;
  /** Seconds one job is assumed to take until workers have measured some (retry-after). Default 2. */
  estimatedJobSeconds?: number;
  /** Approximate length the event stream of each deployment's queue is trimmed to. Default 10 000. */
  eventsMaxLen?: number;
  /** Finished jobs stay in Redis this long (and at most 1000 per deployment), for lost-event recovery. Default 300. */
  keepFinishedSeconds?: number;
  /** How often the jobs this producer waits for are checked against Redis (missed events, lost jobs). Default 10 000. */
  reconcileIntervalMs?: number;
  /** How long `add` waits for a (re)connecting Redis before failing with queueUnavailable. Default 2000. */
  connectWaitMs?: number;
  /** A Redis command that takes longer fails (a hung server). Default 5000. */
  commandTimeoutMs?: number;
}

/** Redis's time in milliseconds inside a script, so that nodes' clocks never matter. */
const LUA_NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Admission, as one atomic script (nothing else runs on Redis while it does, so two producers racing
 * for the last slot are serialised and exactly one gets it). A job is "waiting" from the moment it is
 * admitted until a worker takes it: first as a reservation (a member of KEYS[5], while the producer
 * is adding it to BullMQ), then in BullMQ's own lists. A reservation is dropped as soon as its job
 * exists (it is counted by BullMQ from then on), or when its time runs out (a producer that died
 * between admitting and adding), so each admitted job counts exactly once. Admitted when
 * waiting < maxWaiting + free, free being the live workers' slots (KEYS[6]) not running a job.
 * With ARGV[2] empty it only measures (counts, retry-after).
 *
 * An admitted job also gets the next number of a counter shared by all deployments (KEYS[8]), which
 * orders jobs across deployments for a worker serving several (BullMQ's timestamps can tie).
 *
 * KEYS: 1 wait list, 2 prioritized, 3 delayed, 4 active list (BullMQ's), 5 reservations,
 *       6 slots (member "concurrency:consumer", score: expiry), 7 stats hash, 8 admission counter.
 * ARGV: 1 job key prefix, 2 job id or '', 3 maxWaiting, 4 reservation lifetime (ms).
 * Returns {status (1 admitted, 0 full, -1 duplicate id, 2 measured), waiting, active, capacity, meanMs,
 * sequence number (admitted only, else 0)}.
 */
const ADMIT_LUA = `${LUA_NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local reserved = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then
    redis.call('ZREM', KEYS[5], id)
  else
    reserved = reserved + 1
  end
end
local waiting = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + reserved
local active = redis.call('LLEN', KEYS[4])
local capacity = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  capacity = capacity + (tonumber(string.match(member, '^(%d+):')) or 0)
end
local mean = redis.call('HGET', KEYS[7], 'meanMs') or ''
local status = 2
local seq = 0
if ARGV[2] ~= '' then
  if redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 1 or redis.call('ZSCORE', KEYS[5], ARGV[2]) then
    status = -1
  elseif waiting >= tonumber(ARGV[3]) + math.max(0, capacity - active) then
    status = 0
  else
    redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), ARGV[2])
    status = 1
    waiting = waiting + 1
    seq = redis.call('INCR', KEYS[8])
  end
end
return {status, waiting, active, capacity, mean, seq}`;

/** A consumer announces its slots for a deployment until KEYS[1]'s score (expiry) passes. ARGV: member, lifetime ms. */
const HEARTBEAT_LUA = `${LUA_NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1`;

/** The mean job duration (ms), exponentially weighted, shared by every worker of a deployment. ARGV: ms, weight. */
const RECORD_LUA = `local old = tonumber(redis.call('HGET', KEYS[1], 'meanMs'))
local x = tonumber(ARGV[1])
local mean = x
if old then mean = tonumber(ARGV[2]) * x + (1 - tonumber(ARGV[2])) * old end
redis.call('HSET', KEYS[1], 'meanMs', tostring(mean))
return 1`;

/**
 * Which of the served deployments' queues holds the oldest waiting job (1-based; 0: none), so that a
 * worker serving several takes jobs in the order they were admitted: by admission number, which is
 * the job's name. BullMQ pushes new jobs on the left of its wait list and takes from the right.
 * It also clears the marker of each queue with nothing waiting: BullMQ adds one each time a job is
 * taken (so that another worker looks for more), and a worker blocked on it would otherwise wake at
 * once for nothing after every job. Cleared atomically with the look at the lists, so no wake-up for a
 * job is lost: a job added later adds its own marker. Only the plain marker ("0") is cleared, never
 * BullMQ's marker for delayed jobs.
 * KEYS: wait lists, then prioritized sets, then markers (one of each per queue); ARGV: job key prefixes.
 */
const NEXT_LUA = `local n = #ARGV
local best = 0
local oldest = nil
for i = 1, n do
  local id = redis.call('LINDEX', KEYS[i], -1)
  if id then
    local number = tonumber(redis.call('HGET', ARGV[i] .. id, 'name')) or 0
    if oldest == nil or number < oldest then
      best = i
      oldest = number
    end
  elseif redis.call('ZCARD', KEYS[n + i]) == 0 then
    redis.call('ZREM', KEYS[2 * n + i], '0')
  end
end
return best`;

/** How many live workers other than ARGV[1] a deployment's slot list (KEYS[1]) holds. */
const OTHERS_LUA = `${LUA_NOW}
local n = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  if member ~= ARGV[1] then n = n + 1 end
end
return n`;

/** Weight of the newest job in the mean duration (as the in-process queue). */
export const SMOOTHING = 0.2;

interface EaselCommands {
  easelAdmit(...args: (string | number)[]): Promise<[number, number, number, number, string, number]>;
  easelHeartbeat(...args: (string | number)[]): Promise<number>;
  easelRecord(...args: (string | number)[]): Promise<number>;
  easelNext(...args: (string | number)[]): Promise<number>;
  easelOthers(...args: (string | number)[]): Promise<number>;
}
export type EaselRedis = Redis & EaselCommands;

/** An ioredis client with easel's scripts (sent by hash, reloaded by ioredis after a Redis restart). */
export function connectRedis(options: BullmqConnectionOptions, overrides: RedisOptions): EaselRedis {
  const client =
    typeof options.redis === 'string'
      ? new Redis(options.redis, overrides)
      : new Redis({ ...options.redis, ...overrides });
  client.defineCommand('easelAdmit', { numberOfKeys: 8, lua: ADMIT_LUA });
  client.defineCommand('easelHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT_LUA });
  client.defineCommand('easelRecord', { numberOfKeys: 1, lua: RECORD_LUA });
  client.defineCommand('easelNext', { lua: NEXT_LUA }); // the number of keys comes first
  client.defineCommand('easelOthers', { numberOfKeys: 1, lua: OTHERS_LUA });
  return client as EaselRedis;
}

/** Where everything of one deployment lives in Redis. */
export class QueueNames {
  readonly prefix: string;
  /** BullMQ's key prefix: its keys are `<bullPrefix>:<queue>:wait` and so on. */
  readonly bullPrefix: string;
  /** The pub/sub channel carrying cancellations to every consumer. */
  readonly cancelChannel: string;
  /** The admission counter, shared by all deployments. */
  readonly sequence: string;

  constructor(prefix = 'easel') {
    if (prefix === '' || prefix.includes(':'))
      throw new RangeError('the Redis key prefix must be non-empty, without ":"');
    this.prefix = prefix;
    this.bullPrefix = `${prefix}:q`;
    this.cancelChannel = `${prefix}:cancel`;
    this.sequence = `${prefix}:sequence`;
  }

  /** BullMQ's queue name for a deployment (BullMQ refuses ":" in names; encodeURIComponent escapes it). */
  queue(deployment: string): string {
    return encodeURIComponent(deployment);
  }

  bullKey(deployment: string, suffix: string): string {
    return `${this.bullPrefix}:${this.queue(deployment)}:${suffix}`;
  }

  reservations(deployment: string): string {
    return `${this.prefix}:admission:${this.queue(deployment)}`;
  }

  /** The consumers serving a deployment and their slots (apart from the worker registry's keys). */
  slots(deployment: string): string {
    return `${this.prefix}:slots:${this.queue(deployment)}`;
  }

  stats(deployment: string): string {
    return `${this.prefix}:stats:${this.queue(deployment)}`;
  }

  /** Set when a job is cancelled, so a worker that takes it just after still sees the cancellation. */
  cancelled(deployment: string, jobId: string): string {
    return `${this.prefix}:cancelled:${this.queue(deployment)}:${jobId}`;
  }
}

/**
 * BullMQ's id for a job: BullMQ refuses ids that are integers or hold ":"; a leading letter and
 * percent-encoding rule both out, and decoding gives the caller's id back.
 */
export function toBullId(id: string): string {
  return `j${encodeURIComponent(id)}`;
}

export function fromBullId(bullId: string): string {
  return decodeURIComponent(bullId.slice(1));
}

/** What a cancellation message on the channel carries. */
export interface CancelMessage {
  deployment: string;
  jobId: string;
}

/**
 * BullMQ keeps only an error's message (`failedReason`) for a failed job, so the worker writes the
 * JobFailure there as JSON behind this marker; the producer rebuilds it. A reason without the
 * marker is BullMQ's own (a job that stalled too often) and becomes a generation failure.
 */
const FAILURE_MARKER = 'easel-job-failure:';

export function encodeFailure(failure: JobFailure): string {
  return FAILURE_MARKER + JSON.stringify(failure);
}

export function decodeFailure(failedReason: string | undefined, jobId: string): JobFailure {
  if (failedReason?.startsWith(FAILURE_MARKER)) {
    try {
      const parsed = JSON.parse(failedReason.slice(FAILURE_MARKER.length)) as Partial<JobFailure>;
      if (
        typeof parsed.status === 'number' &&
        typeof parsed.error?.code === 'string' &&
        typeof parsed.error.message === 'string'
      ) {
        return parsed as JobFailure;
      }
    } catch {
      // Falls through: not ours after all.
    }
  }
  return failureOf(errors.generationFailed(`the job queue failed it (${failedReason ?? 'no reason given'})`, jobId));
}

/** Resolves once the client is connected; rejects with queueUnavailable after `waitMs`. */
export async function whenReady(client: Redis, waitMs: number): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') client.connect().catch(() => {}); // errors arrive as 'error' events
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(errors.queueUnavailable(`Redis is not reachable (connection ${client.status})`));
    }, waitMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** Anything Redis or BullMQ threw, as the catalogue's 503 (an ApiError passes through). */
export function unavailable(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return errors.queueUnavailable(`Redis: ${connectionProblem(error)}`);
}

export function defaultOnError(error: Error, context: string): void {
  process.stderr.write(`easel job queue (${context}): ${error.message}\n`);
}

interface Pending {
  deployment: string;
  bullId: string;
  id: string;
  onProgress: ((progress: JobProgress) => void) | undefined;
  resolve: (result: JobResult) => void;
  reject: (reason: unknown) => void;
  /** Checks that found the job missing in Redis, in a row (two mean it is lost). */
  missing: number;
  /** AddOptions.detached: close() lets it be. */
  detached: boolean;
  detach: () => void;
}

interface DeploymentQueue {
  queue: Queue;
  events: QueueEvents;
}

/** A job's place in the queue, as BullmqProducer.jobState tells it. */
export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'missing';

/** How long a reservation outlives a producer that died between admitting a job and adding it. */
const RESERVATION_MS = 30_000;

/** The admitting side on Redis. See the file header and docs/scale-out.md. */
export class BullmqProducer implements JobProducer {
  private readonly names: QueueNames;
  private readonly client: EaselRedis;
  /** A never-connected template: each QueueEvents makes its own blocking connection from it. */
  private readonly eventsTemplate: Redis;
  private readonly queues = new Map<string, Promise<DeploymentQueue>>();
  private readonly pending = new Map<string, Pending>();
  private readonly onError: (error: Error, context: string) => void;
  private readonly reconcileTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: BullmqProducerOptions) {
    if (!(options.maxWaiting >= 0)) throw new RangeError('maxWaiting must be 0 or more');
    this.names = new QueueNames(options.prefix);
    this.onError = options.onError ?? defaultOnError;
    // Fail fast while Redis is away (no offline queue; one retry of a command cut by a reconnect):
    // a request must get its 503 at once, not hang until Redis is back.
    this.client = connectRedis(options, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 5000,
    });
    this.client.on('error', (error: Error) => this.onError(error, 'producer connection'));
    this.eventsTemplate = connectRedis(options, { lazyConnect: true, maxRetriesPerRequest: null });
    this.reconcileTimer = setInterval(() => void this.reconcile(), options.reconcileIntervalMs ?? 10_000);
    this.reconcileTimer.unref();
  }

  async add(id: string, data: JobData, options: AddOptions = {}): Promise<{ finished: Promise<JobResult> }> {
    if (this.closed) throw new JobFailedError(toJobFailure(new QueueClosedError(), id));
    const deployment = data.request.deployment;
    const bullId = toBullId(id);
    const key = `${deployment}\n${bullId}`;
    if (this.pending.has(key)) throw new Error(`a job with id ${id} is already waited for`);
    await whenReady(this.client, this.options.connectWaitMs ?? 2000);
    let dq: DeploymentQueue;
    let admitted: Awaited<ReturnType<EaselCommands['easelAdmit']>>;
    try {
      dq = await this.queueFor(deployment);
      admitted = await this.admit(deployment, bullId);
    } catch (error) {
      throw unavailable(error);
    }
    if (admitted[0] === 0) throw new QueueFullError(this.retryAfter(admitted));
    if (admitted[0] === -1) throw new Error(`a job with id ${id} already exists in the queue`);

    let resolve!: (result: JobResult) => void;
    let reject!: (reason: unknown) => void;
    const finished = new Promise<JobResult>((res, rej) => ((resolve = res), (reject = rej)));
    // A job that was admitted but is only awaited later must not count as an unhandled rejection.
    finished.catch(() => {});
    const signal = options.signal;
    const onAbort = () => {
      const current = this.pending.get(key);
      if (current && this.settle(key)) {
        current.reject(new JobFailedError(toJobFailure(new JobCanceledError(), id)));
        void this.cancel(deployment, bullId);
      }
    };
    const entry: Pending = {
      deployment,
      bullId,
      id,
      onProgress: options.onProgress,
      resolve,
      reject,
      missing: 0,
      detached: options.detached === true,
      detach: () => signal?.removeEventListener('abort', onAbort),
    };
    // Registered before the job exists, so that no event of it can come unheard.
    this.pending.set(key, entry);
    try {
      // The job's name is its admission number (see ADMIT_LUA).
      await dq.queue.add(String(admitted[5]), data, {
        jobId: bullId,
        removeOnComplete: { age: this.options.keepFinishedSeconds ?? 300, count: 1000 },
        removeOnFail: { age: this.options.keepFinishedSeconds ?? 300, count: 1000 },
      });
    } catch (error) {
      this.pending.delete(key);
      this.client.zrem(this.names.reservations(deployment), bullId).catch(() => {});
      throw unavailable(error);
    }
    // Counted by BullMQ from now on; a reservation left behind (Redis away) times out by itself.
    this.client.zrem(this.names.reservations(deployment), bullId).catch(() => {});
    if (this.closed) {
      // close() ran while this job was being added: it ends as the ones close() found did.
      if (this.settle(key)) entry.reject(new JobFailedError(toJobFailure(new QueueClosedError(), id)));
      void this.cancel(deployment, bullId);
    } else if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return { finished };
  }

  async counts(deployment: string): Promise<{ waiting: number; active: number }> {
    try {
      await whenReady(this.client, this.options.connectWaitMs ?? 2000);
      const [, waiting, active] = await this.admit(deployment, '');
      return { waiting, active };
    } catch (error) {
      throw unavailable(error);
    }
  }

  async retryAfterSeconds(deployment: string): Promise<number> {
    try {
      await whenReady(this.client, this.options.connectWaitMs ?? 2000);
      return this.retryAfter(await this.admit(deployment, ''));
    } catch (error) {
      throw unavailable(error);
    }
  }

  /**
   * Where a job is now: waiting (or delayed), active, completed, failed, or missing (never added,
   * or removed once finished for keepFinishedSeconds). Rejects with queueUnavailable when Redis is away.
   */
  async jobState(deployment: string, id: string): Promise<JobState> {
    try {
      await whenReady(this.client, this.options.connectWaitMs ?? 2000);
      const dq = await this.queueFor(deployment);
      const state = await dq.queue.getJobState(toBullId(id));
      if (state === 'completed' || state === 'failed' || state === 'active') return state;
      return state === 'unknown' ? 'missing' : 'waiting';
    } catch (error) {
      throw unavailable(error);
    }
  }

  async close({ graceSeconds = 0 }: { graceSeconds?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.reconcileTimer);
    // Detached jobs (operations) run on without this process: it only stops listening for them.
    for (const [key, entry] of [...this.pending.entries()]) if (entry.detached) this.settle(key);
    if (graceSeconds > 0 && this.pending.size > 0) {
      const all = Promise.allSettled([...this.pending.values()].map((p) => this.whenSettled(p)));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, graceSeconds * 1000)))]);
      clearTimeout(timer);
    }
    // Nobody will read these results: fail them for their clients and take them off the queue.
    const left = [...this.pending.entries()];
    for (const [key, entry] of left) {
      if (this.settle(key)) entry.reject(new JobFailedError(toJobFailure(new QueueClosedError(), entry.id)));
    }
    await Promise.allSettled(left.map(([, entry]) => this.cancel(entry.deployment, entry.bullId)));
    const queues = await Promise.allSettled(this.queues.values());
    await Promise.allSettled(
      queues.flatMap((q) => (q.status === 'fulfilled' ? [q.value.events.close(), q.value.queue.close()] : [])),
    );
    this.client.disconnect();
    this.eventsTemplate.disconnect();
  }

  private whenSettled(entry: Pending): Promise<void> {
    return new Promise((resolve) => {
      const { resolve: res, reject: rej } = entry;
      entry.resolve = (value) => (res(value), resolve());
      entry.reject = (reason) => (rej(reason), resolve());
    });
  }

  /** Removes a pending entry; true when it was still pending (so exactly one path settles it). */
  private settle(key: string): boolean {
    const entry = this.pending.get(key);
    if (!entry) return false;
    this.pending.delete(key);
    entry.detach();
    return true;
  }

  private admit(deployment: string, bullId: string) {
    const n = this.names;
    return this.client.easelAdmit(
      n.bullKey(deployment, 'wait'),
      n.bullKey(deployment, 'prioritized'),
      n.bullKey(deployment, 'delayed'),
      n.bullKey(deployment, 'active'),
      n.reservations(deployment),
      n.slots(deployment),
      n.stats(deployment),
      n.sequence,
      `${n.bullPrefix}:${n.queue(deployment)}:`,
      bullId,
      this.options.maxWaiting,
      RESERVATION_MS,
    );
  }

  /**
   * Seconds until a slot is likely free: the jobs ahead (waiting and running) times the measured
   * mean job duration, divided among the live workers' slots. Before any job has finished, the guess.
   */
  private retryAfter([, waiting, active, capacity, meanMs]: Awaited<ReturnType<EaselCommands['easelAdmit']>>): number {
    const perJob = meanMs === '' ? (this.options.estimatedJobSeconds ?? 2) : Number(meanMs) / 1000;
    const seconds = Math.ceil(((waiting + active) * perJob) / Math.max(1, capacity));
    // The openai client honours retry-after only below 60 s; above that it uses its own backoff.
    return Math.min(59, Math.max(1, Number.isFinite(seconds) ? seconds : 59));
  }

  /**
   * The queue and event listener of a deployment, made on first use. The listener starts reading
   * after the stream's newest event as it is now (not at "$" when its first read happens to run),
   * so nothing a job of this producer emits can fall in between.
   */
  private queueFor(deployment: string): Promise<DeploymentQueue> {
    let made = this.queues.get(deployment);
    if (!made) {
      made = this.makeQueue(deployment);
      this.queues.set(deployment, made);
      // A failed start (Redis went away meanwhile) is retried by the next add.
      made.catch(() => this.queues.delete(deployment));
    }
    return made;
  }

  private async makeQueue(deployment: string): Promise<DeploymentQueue> {
    const name = this.names.queue(deployment);
    const last = await this.client.xrevrange(this.names.bullKey(deployment, 'events'), '+', '-', 'COUNT', 1);
    const lastEventId = last[0]?.[0] ?? '0-0';
    const queue = new Queue(name, {
      connection: this.client,
      prefix: this.names.bullPrefix,
      streams: { events: { maxLen: this.options.eventsMaxLen ?? 10_000 } },
    });
    queue.on('error', (error: Error) => this.onError(error, `queue ${deployment}`));
    const events = new QueueEvents(name, {
      connection: this.eventsTemplate,
      prefix: this.names.bullPrefix,
      lastEventId,
    });
    events.on('error', (error: Error) => this.onError(error, `events of ${deployment}`));
    events.on('progress', ({ jobId, data }) => {
      const entry = this.pending.get(`${deployment}\n${jobId}`);
      try {
        entry?.onProgress?.(data as JobProgress);
      } catch {
        // A listener that throws (a closed stream) must not stop the events of other jobs.
      }
    });
    events.on('completed', ({ jobId, returnvalue }) => {
      const key = `${deployment}\n${jobId}`;
      const entry = this.pending.get(key);
      if (entry && this.settle(key)) entry.resolve(returnvalue as unknown as JobResult);
    });
    events.on('failed', ({ jobId, failedReason }) => {
      const key = `${deployment}\n${jobId}`;
      const entry = this.pending.get(key);
      if (entry && this.settle(key)) entry.reject(new JobFailedError(decodeFailure(failedReason, entry.id)));
    });
    try {
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    } catch (error) {
      await Promise.allSettled([queue.close(), events.close()]);
      throw error;
    }
    return { queue, events };
  }

  /** Takes a job off the queue if it waits, and tells the worker running it otherwise. */
  private async cancel(deployment: string, bullId: string): Promise<void> {
    try {
      const dq = await this.queueFor(deployment);
      await this.client.set(this.names.cancelled(deployment, bullId), '1', 'PX', 3_600_000);
      if ((await dq.queue.remove(bullId)) !== 1) {
        const message: CancelMessage = { deployment, jobId: bullId };
        await this.client.publish(this.names.cancelChannel, JSON.stringify(message));
      }
    } catch (error) {
      this.onError(error instanceof Error ? error : new Error(String(error)), `cancelling ${bullId}`);
    }
  }

  /**
   * The safety net under the events: a job this producer waits for that finished while its event was
   * missed (trimmed from the stream) is settled from the job's record, and one that Redis no longer
   * has on two checks in a row (Redis restarted without its data) fails with queueUnavailable.
   */
  private async reconcile(): Promise<void> {
    if (this.client.status !== 'ready') return;
    for (const [key, entry] of [...this.pending.entries()]) {
      try {
        const dq = await this.queueFor(entry.deployment);
        const job = await Job.fromId<JobData, JobResult>(dq.queue, entry.bullId);
        if (!this.pending.has(key)) continue;
        if (!job) {
          if (++entry.missing >= 2 && this.settle(key)) {
            entry.reject(new JobFailedError(failureOf(errors.queueUnavailable('the job is no longer in Redis'))));
          }
          continue;
        }
        entry.missing = 0;
        if (job.finishedOn && job.failedReason && this.settle(key)) {
          entry.reject(new JobFailedError(decodeFailure(job.failedReason, entry.id)));
        } else if (job.finishedOn && !job.failedReason && this.settle(key)) {
          entry.resolve(job.returnvalue);
        }
      } catch (error) {
        this.onError(error instanceof Error ? error : new Error(String(error)), 'checking waited-for jobs');
        return;
      }
    }
  }
}
