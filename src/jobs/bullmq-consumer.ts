/**
 * The running side of the job queue on Redis. `concurrency` bounds the jobs this process runs at
 * once across all the deployments it serves (as the in-process queue does), and jobs start oldest
 * first across those deployments. BullMQ's Worker runs one queue with its own concurrency, so this
 * consumer takes jobs itself through BullMQ's manual-fetching API (a Worker without a processor per
 * deployment: `getNextJob`, then `moveToCompleted` / `moveToFailed` / `moveToWait`), renews the locks
 * of its jobs, and leaves the stalled-job checks to those Workers. Besides running jobs it keeps what
 * the admitting side needs: its slots in each deployment's slot list (a heartbeat), the mean job
 * duration (retry-after), and a subscription to the cancellation channel.
 * Design and timings: docs/scale-out.md, "Queue on Redis (BullMQ)".
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

import { abortable } from '../runtime/abort.ts';
import {
  type BullmqConnectionOptions,
  type CancelMessage,
  connectRedis,
  defaultOnError,
  type EaselRedis,
  encodeFailure,
  fromBullId,
  QueueNames,
  SMOOTHING,
} from './bullmq-queue.ts';
import type { JobConsumer, JobData, JobProcessor, JobProgress, JobResult } from './job-contract.ts';
import { JobCanceledError, JobTimeoutError, QueueClosedError, toJobFailure } from './job-failure.ts';

export interface BullmqConsumerOptions extends BullmqConnectionOptions {
  /** Jobs this process runs at once, across the deployments it serves. */
  concurrency: number;
  /** A running job is aborted after this long (its failure: generation timed out). 0 = no limit. */
  jobTimeoutSeconds: number;
  /**
   * How long this process's claim on a running job lasts unless renewed (renewed every half of it).
   * A worker that dies loses its jobs to another after at most this plus `stalledIntervalMs`. Default 10 000.
   */
  lockDurationMs?: number;
  /** How often each deployment's queue is checked for jobs whose worker died. Default 5000. */
  stalledIntervalMs?: number;
  /** Times a job may start when its workers keep dying (first run included); then it fails. Default 2. */
  attempts?: number;
  /** Longest a blocking wait for new jobs lasts before it is renewed. Default 5. */
  blockSeconds?: number;
  /** Called as each job starts, with how long it waited since it was admitted (for metrics). */
  onStart?: (job: { id: string; deployment: string; waitedMs: number }) => void;
}

interface Running {
  deployment: string;
  worker: Worker<JobData, JobResult>;
  job: Job<JobData, JobResult>;
  token: string;
  controller: AbortController;
  done: Promise<void>;
}

export class BullmqConsumer implements JobConsumer {
  private readonly names: QueueNames;
  /** Commands (shared by the Workers, which also each make a blocking connection of their own). */
  private readonly client: EaselRedis;
  /** Waits for new jobs (BZPOPMIN on the queues' markers); disconnecting it wakes the loop on close. */
  private readonly blocker: Redis;
  private readonly subscriber: Redis;
  private readonly onError: (error: Error, context: string) => void;
  private readonly id = randomUUID();
  private readonly workers = new Map<string, Worker<JobData, JobResult>>();
  private readonly jobs = new Map<string, Running>();
  private loop: Promise<void> = Promise.resolve();
  /** Wakes the loop when a slot frees or close begins. */
  private wake: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: BullmqConsumerOptions) {
    if (!(options.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
    if (!((options.attempts ?? 2) >= 1)) throw new RangeError('attempts must be at least 1');
    this.names = new QueueNames(options.prefix);
    this.onError = options.onError ?? defaultOnError;
    // A worker's commands (finishing a job, renewing a lock) wait for a reconnect rather than fail:
    // no retry limit, offline queue on. BullMQ requires this of the connections it duplicates.
    this.client = connectRedis(options, { maxRetriesPerRequest: null });
    this.client.on('error', (error: Error) => this.onError(error, 'worker connection'));
    // Announce the slots as soon as Redis is reachable (at start, and again after it returns).
    this.client.on('ready', () => this.beat());
    this.blocker = this.client.duplicate();
    this.blocker.on('error', (error: Error) => this.onError(error, 'waiting for jobs'));
    this.subscriber = this.client.duplicate();
    this.subscriber.on('error', (error: Error) => this.onError(error, 'cancellation channel'));
  }

  private get lockDurationMs(): number {
    return this.options.lockDurationMs ?? 10_000;
  }

  process(deployments: readonly string[], processor: JobProcessor): void {
    if (this.workers.size > 0 || this.closing) throw new Error('process() is called once, before close()');
    if (deployments.length === 0) throw new RangeError('process() needs at least one deployment');
    // ioredis subscribes again by itself after a reconnect.
    this.subscriber.subscribe(this.names.cancelChannel).catch((error: Error) => this.onError(error, 'subscribe'));
    this.subscriber.on('message', (_channel: string, message: string) => this.onCancel(message));
    for (const deployment of new Set(deployments)) {
      // No processor: jobs are taken by the loop below; the Worker checks for stalled jobs.
      const worker = new Worker<JobData, JobResult>(this.names.queue(deployment), null, {
        connection: this.client,
        prefix: this.names.bullPrefix,
        lockDuration: this.lockDurationMs,
        stalledInterval: this.options.stalledIntervalMs ?? 5000,
        maxStalledCount: (this.options.attempts ?? 2) - 1,
      });
      worker.on('error', (error: Error) => this.onError(error, `worker of ${deployment}`));
      worker.startStalledCheckTimer().catch((error: Error) => this.onError(error, 'stalled-job checks'));
      this.workers.set(deployment, worker);
    }
    this.beat();
    this.timers = [
      setInterval(() => this.beat(), this.lockDurationMs / 2),
      setInterval(() => this.renewLocks(), this.lockDurationMs / 2),
    ];
    this.loop = this.takeJobs(processor);
  }

  running(): number {
    return this.jobs.size;
  }

  close({ graceSeconds = 0 }: { graceSeconds?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(graceSeconds);
    return this.closing;
  }

  private async shutdown(graceSeconds: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.blocker.disconnect(); // ends a blocking wait at once
    // Bounded waits from here: with Redis away, commands wait for it, and close must still end.
    await within(this.loop, 2000);
    if (graceSeconds > 0 && this.jobs.size > 0) {
      const settled = Promise.allSettled([...this.jobs.values()].map((r) => r.done));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, graceSeconds * 1000)))]);
      clearTimeout(timer);
    }
    for (const { controller } of this.jobs.values()) controller.abort(new QueueClosedError());
    await within(Promise.allSettled([...this.jobs.values()].map((r) => r.done)), this.lockDurationMs);
    for (const timer of this.timers) clearInterval(timer);
    await within(Promise.allSettled([...this.workers.values()].map((w) => w.close())), this.lockDurationMs);
    if (this.client.status === 'ready') {
      const member = this.member();
      const leave = [...this.workers.keys()].map((d) => this.client.zrem(this.names.slots(d), member));
      await within(Promise.allSettled(leave), 2000);
    }
    this.subscriber.disconnect();
    this.client.disconnect();
  }

  /**
   * Takes the oldest waiting job of the served deployments whenever a slot is free; with nothing
   * waiting, blocks on the queues' markers (BullMQ adds one as a job becomes waiting).
   */
  private async takeJobs(processor: JobProcessor): Promise<void> {
    const served = [...this.workers.entries()];
    const markers = served.map(([d]) => this.names.bullKey(d, 'marker'));
    const listKeys = [
      ...served.map(([d]) => this.names.bullKey(d, 'wait')),
      ...served.map(([d]) => this.names.bullKey(d, 'prioritized')),
      ...markers,
    ];
    const jobPrefixes = served.map(([d]) => this.names.bullKey(d, ''));
    // After a wait, the queue whose marker ended it holds the job that arrived, and it is taken from at
    // once: no round trip to Redis comes before a new job. Otherwise (a job just started, a slot freed,
    // another worker was quicker) Redis is asked which queue holds the oldest waiting job, and the same
    // script clears the markers of empty queues (NEXT_LUA). Jobs of two deployments arriving within one
    // wake may start in either order; jobs that waited longer start oldest first.
    let woken = 0; // the queue (1-based) whose marker ended the last wait
    let missed = 0; // takes in a row that found no job where one was waiting
    while (!this.stopping) {
      try {
        if (this.jobs.size >= this.options.concurrency) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        const index = woken || (await this.client.easelNext(listKeys.length, ...listKeys, ...jobPrefixes));
        woken = 0;
        if (this.stopping) break;
        if (index === 0) {
          woken = await this.waitForJob(markers);
          continue;
        }
        const [deployment, worker] = served[index - 1]!;
        const token = randomUUID();
        const job = await worker.getNextJob(token, { block: false });
        if (!job) {
          // Another worker was quicker: look again. Twice in a row, BullMQ holds the jobs back (a queue
          // paused from outside easel): wait for a marker rather than ask Redis in a loop.
          if (++missed >= 2) {
            missed = 0;
            woken = await this.waitForJob(markers);
          }
          continue;
        }
        missed = 0;
        if (this.stopping) {
          await job.moveToWait(token); // taken as close began: never started, back to the front
          break;
        }
        this.start(deployment, worker, job, token, processor);
      } catch (error) {
        if (this.stopping) break;
        this.onError(error instanceof Error ? error : new Error(String(error)), 'taking jobs');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          this.wake = () => (clearTimeout(timer), resolve());
        });
      }
    }
  }

  /**
   * Blocks until BullMQ marks one of the queues as having a job (or `blockSeconds` pass); returns
   * that queue (1-based), 0 after a timeout.
   */
  private async waitForJob(markers: string[]): Promise<number> {
    const popped = await this.blocker.bzpopmin(...markers, this.options.blockSeconds ?? 5);
    return popped ? markers.indexOf(popped[0]) + 1 : 0;
  }

  private start(
    deployment: string,
    worker: Worker<JobData, JobResult>,
    job: Job<JobData, JobResult>,
    token: string,
    processor: JobProcessor,
  ): void {
    const key = `${deployment}\n${job.id}`;
    const controller = new AbortController();
    const running: Running = { deployment, worker, job, token, controller, done: Promise.resolve() };
    this.jobs.set(key, running);
    running.done = this.run(running, processor)
      .catch((error: unknown) => {
        // Finishing it in Redis failed (Redis away, the lock lost): the stalled check takes it from here.
        this.onError(error instanceof Error ? error : new Error(String(error)), `finishing job ${job.id}`);
      })
      .finally(() => {
        this.jobs.delete(key);
        this.wake?.();
      });
  }

  /**
   * One job, from start to its end in Redis. A failure is stored as an error whose message is the
   * encoded JobFailure (BullMQ keeps the message only). A cancelled job fails with a plain reason
   * nobody reads. A job aborted by shutdown goes back to the front of the waiting list when another
   * worker serves its deployment, so its client never knows; without one it fails with the shutdown
   * code (503, which clients retry) rather than leave its client waiting for a worker that may not come.
   */
  private async run(running: Running, processor: JobProcessor): Promise<void> {
    const { deployment, job, token, controller } = running;
    const bullId = job.id!;
    const id = fromBullId(bullId);
    if (job.deferredFailure) {
      // BullMQ marked it when it stalled once too often: it fails without running again.
      await job.moveToFailed(new UnrecoverableError(job.deferredFailure), token, false);
      return;
    }
    const timer =
      this.options.jobTimeoutSeconds > 0
        ? setTimeout(() => controller.abort(new JobTimeoutError()), this.options.jobTimeoutSeconds * 1000)
        : null;
    let progress: Promise<void> = Promise.resolve();
    // In order: each update is sent after the one before it was written to the event stream.
    const reportProgress = (p: JobProgress) => {
      progress = progress
        .then(() => job.updateProgress(p))
        .catch((error: Error) => this.onError(error, `progress of ${id}`));
    };
    const started = performance.now();
    let outcome: { result: JobResult } | { error: unknown };
    try {
      try {
        this.options.onStart?.({ id, deployment, waitedMs: Math.max(0, Date.now() - job.timestamp) });
      } catch {
        // Observability must never stop a job.
      }
      // Cancelled while it was being taken? (The channel reaches only jobs already running here.) Asked
      // alongside the start, not before it, which would put a round trip to Redis before every job: the
      // processor sees its signal fire between its steps. Redis away: the lock renewal will notice.
      this.client.exists(this.names.cancelled(deployment, bullId)).then(
        (cancelled) => cancelled === 1 && controller.abort(new JobCanceledError()),
        () => {},
      );
      // Called even when already aborted (cancelled, closing): the processor sees its signal fired.
      const work = processor(job.data, { id, attempt: job.attemptsStarted, reportProgress, signal: controller.signal });
      // Settles when the signal fires even if the job ignores it (a hung engine).
      outcome = { result: await abortable(work, controller.signal) };
    } catch (error) {
      outcome = { error: controller.signal.aborted ? controller.signal.reason : error };
    } finally {
      if (timer) clearTimeout(timer);
    }
    await progress;
    const reason = 'error' in outcome ? outcome.error : null;
    if (reason instanceof QueueClosedError && (await this.othersServe(deployment))) {
      await job.moveToWait(token);
      return;
    }
    if (reason instanceof JobCanceledError) {
      await job.moveToFailed(new UnrecoverableError(reason.message), token, false);
      return;
    }
    const ms = performance.now() - started;
    if ('result' in outcome) await job.moveToCompleted(outcome.result, token, false);
    else await job.moveToFailed(new UnrecoverableError(encodeFailure(toJobFailure(reason, id))), token, false);
    // After the job's end, not before it: sent first, the script would run ahead of the one that ends
    // the job, and the answer would wait for it (about 0.5 ms per job, measured).
    this.record(deployment, ms);
  }

  /** This process's entry in a deployment's slot list: its slots, then its id. */
  private member(): string {
    return `${this.options.concurrency}:${this.id}`;
  }

  /** Whether another live worker serves the deployment (one whose heartbeat has not expired). */
  private async othersServe(deployment: string): Promise<boolean> {
    return (await this.client.easelOthers(this.names.slots(deployment), this.member())) > 0;
  }

  /** Announces this worker's slots until three heartbeats from now (admission and retry-after read them). */
  private beat(): void {
    if (this.client.status !== 'ready') return; // Redis away: the entries expire, as they should
    for (const deployment of this.workers.keys()) {
      this.client
        .easelHeartbeat(this.names.slots(deployment), this.member(), (this.lockDurationMs / 2) * 3)
        .catch((error: Error) => this.onError(error, 'heartbeat'));
    }
  }

  /** Extends the locks of the jobs running here; one whose lock was lost is logged (another worker may run it). */
  private renewLocks(): void {
    if (this.client.status !== 'ready' || this.jobs.size === 0) return;
    for (const [deployment, worker] of this.workers) {
      const mine = [...this.jobs.values()].filter((r) => r.deployment === deployment);
      if (mine.length === 0) continue;
      worker
        .extendJobLocks(
          mine.map((r) => r.job.id!),
          mine.map((r) => r.token),
          this.lockDurationMs,
        )
        .then((lost) => {
          for (const jobId of lost) this.onError(new Error(`lost the lock of job ${jobId}`), 'renewing locks');
        })
        .catch((error: Error) => this.onError(error, 'renewing locks'));
    }
  }

  private onCancel(message: string): void {
    try {
      const { deployment, jobId } = JSON.parse(message) as CancelMessage;
      this.jobs.get(`${deployment}\n${jobId}`)?.controller.abort(new JobCanceledError());
    } catch {
      // Not a message of ours.
    }
  }

  private record(deployment: string, ms: number): void {
    this.client
      .easelRecord(this.names.stats(deployment), Math.round(ms), SMOOTHING)
      .catch((error: Error) => this.onError(error, 'recording the job duration'));
  }
}

/** Waits for `promise`, or `ms` at most. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
