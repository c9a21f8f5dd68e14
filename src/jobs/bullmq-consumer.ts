/**
 * The running side of the job queue on Redis: one BullMQ Worker per deployment this process has
 * loaded. Besides running jobs it keeps what the admitting side needs: its slots in the deployment's
 * worker list (a heartbeat), the mean job duration (retry-after), and a subscription to the
 * cancellation channel. Design and timings: docs/scale-out.md, "Queue on Redis (BullMQ)".
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

import { ApiError, errors } from '../contract/errors.ts';
import { EngineAbortedError, EngineError } from '../engines/engine.ts';
import { abortable } from '../runtime/abort.ts';
import {
  apiFailure,
  type BullmqConnectionOptions,
  type CancelMessage,
  connectRedis,
  defaultOnError,
  type EaselRedis,
  encodeFailure,
  fromBullId,
  JobCancelledError,
  QueueNames,
  SMOOTHING,
} from './bullmq-queue.ts';
import type { JobConsumer, JobData, JobFailure, JobProcessor, JobProgress, JobResult } from './job-contract.ts';
import { JobTimeoutError, QueueClosedError } from './queue.ts';

export interface BullmqConsumerOptions extends BullmqConnectionOptions {
  /** Jobs of each deployment this process runs at once. */
  concurrency: number;
  /** A running job is aborted after this long (its failure: generation timed out). 0 = no limit. */
  jobTimeoutSeconds: number;
  /**
   * How long a worker's claim on a running job lasts unless renewed (renewed every half of it).
   * A worker that dies loses its jobs to another after at most this plus `stalledIntervalMs`. Default 10 000.
   */
  lockDurationMs?: number;
  /** How often each worker looks for jobs whose worker died. Default 5000. */
  stalledIntervalMs?: number;
  /** Times a job may start when its workers keep dying (first run included); then it fails. Default 2. */
  attempts?: number;
  /** Called as each job starts, with how long it waited since it was admitted (for metrics). */
  onStart?: (job: { id: string; waitedMs: number }) => void;
}

interface Running {
  controller: AbortController;
  done: Promise<unknown>;
}

/** How a job's error reaches its client: a catalogue error, whichever process ran the job. */
export function jobFailure(error: unknown, jobId: string): JobFailure {
  if (error instanceof JobTimeoutError) return apiFailure(errors.generationTimedOut());
  if (error instanceof ApiError) return apiFailure(error);
  if (error instanceof EngineError && !(error instanceof EngineAbortedError)) {
    return apiFailure(errors.generationFailed(error.message, jobId));
  }
  return apiFailure(errors.internal(jobId));
}

export class BullmqConsumer implements JobConsumer {
  private readonly names: QueueNames;
  /** Commands of the workers (shared by them; each Worker also makes its own blocking connection). */
  private readonly client: EaselRedis;
  private readonly subscriber: Redis;
  private readonly onError: (error: Error, context: string) => void;
  private readonly id = randomUUID();
  private readonly workers: Worker<JobData, JobResult>[] = [];
  private readonly jobs = new Map<string, Running>();
  private deployments: readonly string[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private closing: Promise<void> | null = null;
  /** Set once the grace period of close is over: a job starting now goes straight back to waiting. */
  private abortAll = false;

  constructor(private readonly options: BullmqConsumerOptions) {
    if (!(options.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
    if ((options.attempts ?? 2) < 1) throw new RangeError('attempts must be at least 1');
    this.names = new QueueNames(options.prefix);
    this.onError = options.onError ?? defaultOnError;
    // BullMQ's workers need commands that wait for a reconnect rather than fail (lock renewals,
    // finishing a job): no retry limit, offline queue on.
    this.client = connectRedis(options, { maxRetriesPerRequest: null });
    this.client.on('error', (error: Error) => this.onError(error, 'worker connection'));
    this.subscriber = this.client.duplicate();
    this.subscriber.on('error', (error: Error) => this.onError(error, 'cancellation channel'));
  }

  private get lockDurationMs(): number {
    return this.options.lockDurationMs ?? 10_000;
  }

  process(deployments: readonly string[], processor: JobProcessor): void {
    if (this.deployments.length > 0 || this.closing) throw new Error('process() is called once, before close()');
    this.deployments = [...deployments];
    // ioredis subscribes again by itself after a reconnect.
    this.subscriber.subscribe(this.names.cancelChannel).catch((error: Error) => this.onError(error, 'subscribe'));
    this.subscriber.on('message', (_channel: string, message: string) => this.onCancel(message));
    for (const deployment of deployments) {
      const worker = new Worker<JobData, JobResult>(
        this.names.queue(deployment),
        (job, token) => this.run(deployment, job, token, processor),
        {
          connection: this.client,
          prefix: this.names.bullPrefix,
          concurrency: this.options.concurrency,
          lockDuration: this.lockDurationMs,
          stalledInterval: this.options.stalledIntervalMs ?? 5000,
          maxStalledCount: (this.options.attempts ?? 2) - 1,
        },
      );
      worker.on('error', (error: Error) => this.onError(error, `worker of ${deployment}`));
      this.workers.push(worker);
    }
    this.beat();
    this.heartbeat = setInterval(() => this.beat(), this.lockDurationMs / 2);
    this.heartbeat.unref();
  }

  running(): number {
    return this.jobs.size;
  }

  close({ graceSeconds = 0 }: { graceSeconds?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(graceSeconds);
    return this.closing;
  }

  private async shutdown(graceSeconds: number): Promise<void> {
    clearInterval(this.heartbeat);
    // Stops fetching at once; resolves when the jobs running have finished.
    const closed = Promise.allSettled(this.workers.map((w) => w.close()));
    if (graceSeconds > 0 && this.jobs.size > 0) {
      const settled = Promise.allSettled([...this.jobs.values()].map((r) => r.done));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, graceSeconds * 1000)))]);
      clearTimeout(timer);
    }
    this.abortAll = true;
    for (const { controller } of this.jobs.values()) controller.abort(new QueueClosedError());
    await closed;
    if (this.client.status === 'ready') {
      const member = this.member();
      await Promise.allSettled(this.deployments.map((d) => this.client.zrem(this.names.workers(d), member)));
    }
    this.subscriber.disconnect();
    this.client.disconnect();
  }

  /** This process's entry in a deployment's worker list: its slots, then its id. */
  private member(): string {
    return `${this.options.concurrency}:${this.id}`;
  }

  /** Announces this worker's slots until three heartbeats from now (admission and retry-after read them). */
  private beat(): void {
    if (this.client.status !== 'ready') return; // Redis away: the entries expire, as they should
    for (const deployment of this.deployments) {
      this.client
        .easelHeartbeat(this.names.workers(deployment), this.member(), (this.lockDurationMs / 2) * 3)
        .catch((error: Error) => this.onError(error, 'heartbeat'));
    }
  }

  private onCancel(message: string): void {
    try {
      const { deployment, jobId } = JSON.parse(message) as CancelMessage;
      this.jobs.get(`${deployment}\n${jobId}`)?.controller.abort(new JobCancelledError());
    } catch {
      // Not a message of ours.
    }
  }

  private record(deployment: string, ms: number): void {
    this.client
      .easelRecord(this.names.stats(deployment), Math.round(ms), SMOOTHING)
      .catch((error: Error) => this.onError(error, 'recording the job duration'));
  }

  /**
   * One job, as BullMQ's processor. Resolves with the result; a failure is thrown as an error whose
   * message is the encoded JobFailure (BullMQ keeps the message only). A cancelled job fails with a
   * plain reason nobody reads; a job aborted by shutdown goes back to the front of the waiting list
   * (WaitingError tells BullMQ it was moved), so another worker runs it and its client never knows.
   */
  private async run(
    deployment: string,
    job: Job<JobData, JobResult>,
    token: string | undefined,
    processor: JobProcessor,
  ): Promise<JobResult> {
    const bullId = job.id!;
    const id = fromBullId(bullId);
    const key = `${deployment}\n${bullId}`;
    const controller = new AbortController();
    let settle!: () => void;
    this.jobs.set(key, { controller, done: new Promise<void>((resolve) => (settle = resolve)) });
    if (this.abortAll) controller.abort(new QueueClosedError());
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
    try {
      try {
        this.options.onStart?.({ id, waitedMs: Math.max(0, Date.now() - job.timestamp) });
      } catch {
        // Observability must never stop a job.
      }
      // Cancelled while it was being taken? (The channel reaches only jobs already running here.)
      if (!controller.signal.aborted && (await this.client.exists(this.names.cancelled(deployment, bullId))) === 1) {
        controller.abort(new JobCancelledError());
      }
      const work = controller.signal.aborted
        ? Promise.reject(controller.signal.reason as Error)
        : processor(job.data, { id, attempt: job.attemptsStarted, reportProgress, signal: controller.signal });
      // Settles when the signal fires even if the job ignores it (a hung engine).
      const result = await abortable(work, controller.signal);
      await progress;
      this.record(deployment, performance.now() - started);
      return result;
    } catch (error) {
      await progress;
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof QueueClosedError && token) {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (reason instanceof JobCancelledError) throw new UnrecoverableError(reason.message);
      this.record(deployment, performance.now() - started);
      throw new UnrecoverableError(encodeFailure(jobFailure(reason ?? error, id)));
    } finally {
      if (timer) clearTimeout(timer);
      this.jobs.delete(key);
      settle();
    }
  }
}
