/**
 * The embedded queue: the job contract's producer and consumer in one object, in one process. It
 * holds to the contract as strictly as a queue between processes does: job data, progress and
 * results are copied through JSON, and failures reach the caller as JobFailedError with a
 * catalogue error, so code that works here works unchanged on BullMQ (docs/scale-out.md).
 *
 * Each deployment is its own queue, as it is on BullMQ: `maxWaiting` bounds the jobs waiting per
 * deployment, and a full deployment refuses without affecting the others. `concurrency` is per
 * process: the jobs running at once in this process, across all the deployments it serves. Jobs
 * start in the order they were admitted (FIFO), skipping those of deployments this process does not
 * serve.
 */
import { abortable } from '../runtime/abort.ts';
import {
  type AddOptions,
  type JobConsumer,
  type JobData,
  JobFailedError,
  type JobProcessor,
  type JobProducer,
  type JobProgress,
  type JobResult,
  QueueFullError,
} from './job-contract.ts';
import { JobCanceledError, JobTimeoutError, QueueClosedError, toJobFailure } from './job-failure.ts';

export interface InProcessQueueOptions {
  /** Jobs running at once in this process, across deployments. */
  concurrency: number;
  /** Jobs waiting per deployment beyond the running ones; one more is refused with QueueFullError. */
  maxWaiting: number;
  /** A running job is aborted after this long (its signal fires with JobTimeoutError). 0 = no limit. */
  jobTimeoutSeconds: number;
  /** Seconds one job is assumed to take until a deployment's first jobs have been measured (retry-after). */
  estimatedJobSeconds?: number;
  /** Milliseconds clock for measuring jobs (tests pass a fake one); default performance.now. */
  now?: () => number;
  /** Called as each job starts, with how long it waited since it was admitted (for metrics). */
  onStart?: (job: { id: string; deployment: string; waitedMs: number }) => void;
}

interface Entry {
  id: string;
  deployment: string;
  data: JobData;
  options: AddOptions;
  /** now() at admission. */
  admitted: number;
  resolve: (value: JobResult) => void;
  reject: (reason: JobFailedError) => void;
  /** Removes the caller's abort listener of a waiting job. */
  stopWatching: () => void;
}

interface Running {
  deployment: string;
  controller: AbortController;
  done: Promise<void>;
}

/** The embedded JobProducer and JobConsumer: FIFO, a concurrency limit and bounded waiting, in memory. */
export class InProcessQueue implements JobProducer, JobConsumer {
  private processor: JobProcessor | null = null;
  private served: ReadonlySet<string> = new Set();
  private readonly waiting: Entry[] = [];
  private readonly active = new Map<string, Running>();
  private closed = false;
  private readonly now: () => number;
  /** Per deployment: exponentially weighted mean of the seconds its jobs took to run. */
  private readonly meanJobSeconds = new Map<string, number>();

  constructor(private readonly options: InProcessQueueOptions) {
    if (options.concurrency < 1) throw new RangeError('concurrency must be at least 1');
    this.now = options.now ?? (() => performance.now());
  }

  process(deployments: readonly string[], processor: JobProcessor): void {
    if (this.processor) throw new Error('process() was called already');
    this.processor = processor;
    this.served = new Set(deployments);
    this.pump();
  }

  running(): number {
    return this.active.size;
  }

  async add(id: string, data: JobData, options: AddOptions = {}): Promise<{ finished: Promise<JobResult> }> {
    if (this.closed) throw new JobFailedError(toJobFailure(new QueueClosedError(), id));
    if (this.active.has(id) || this.waiting.some((entry) => entry.id === id))
      throw new Error(`a job with id ${id} is already in the queue`);
    const deployment = data.request.deployment;
    // The same copy a queue between processes makes: what is not JSON does not arrive as it was sent.
    const copy = jsonCopy(data);
    let entry!: Entry;
    const finished = new Promise<JobResult>((resolve, reject) => {
      entry = { id, deployment, data: copy, options, admitted: this.now(), resolve, reject, stopWatching };
    });
    // A job that was admitted but is only awaited later must not count as an unhandled rejection.
    finished.catch(() => {});
    const { signal } = options;
    const onCallerAbort = () => this.cancelWaiting(entry);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    function stopWatching() {
      signal?.removeEventListener('abort', onCallerAbort);
    }

    if (signal?.aborted) {
      // Cancelled before it was admitted: it never runs.
      entry.stopWatching();
      entry.reject(new JobFailedError(toJobFailure(new JobCanceledError(), id)));
      return { finished };
    }
    this.waiting.push(entry);
    this.pump();
    // Admitted only when it started at once or its deployment has room to wait.
    if (this.waiting.includes(entry) && this.waitingOf(deployment) > this.options.maxWaiting) {
      this.waiting.splice(this.waiting.indexOf(entry), 1);
      entry.stopWatching();
      throw new QueueFullError(this.retryAfter(deployment));
    }
    return { finished };
  }

  async counts(deployment: string): Promise<{ waiting: number; active: number }> {
    return { waiting: this.waitingOf(deployment), active: this.activeOf(deployment) };
  }

  async retryAfterSeconds(deployment: string): Promise<number> {
    return this.retryAfter(deployment);
  }

  /**
   * Stop admitting; end the waiting jobs with a shutdown failure; give running jobs up to
   * `graceSeconds` to finish, then abort them with QueueClosedError and wait for them to settle.
   */
  async close({ graceSeconds = 0 }: { graceSeconds?: number } = {}): Promise<void> {
    this.closed = true;
    for (const entry of this.waiting.splice(0)) {
      entry.stopWatching();
      entry.reject(new JobFailedError(toJobFailure(new QueueClosedError(), entry.id)));
    }
    const settled = Promise.allSettled([...this.active.values()].map((r) => r.done));
    if (graceSeconds > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, graceSeconds * 1000)))]);
      clearTimeout(timer);
    }
    for (const { controller } of this.active.values()) controller.abort(new QueueClosedError());
    await settled;
  }

  /**
   * Seconds until a slot is likely free for this deployment: its jobs ahead (waiting and running)
   * times its measured mean job duration, divided among the workers. Before any of its jobs has
   * finished, the configured guess.
   */
  private retryAfter(deployment: string): number {
    const perJob = this.meanJobSeconds.get(deployment) ?? this.options.estimatedJobSeconds ?? 2;
    const ahead = this.waitingOf(deployment) + this.activeOf(deployment);
    // The openai client honours retry-after only below 60 s; above that it uses its own backoff.
    return Math.min(59, Math.max(1, Math.ceil((ahead * perJob) / this.options.concurrency)));
  }

  /** Weight of the newest job in the mean: recent throughput matters, one outlier does not dominate. */
  private static readonly SMOOTHING = 0.2;

  private measure(deployment: string, seconds: number): void {
    const a = InProcessQueue.SMOOTHING;
    const mean = this.meanJobSeconds.get(deployment);
    this.meanJobSeconds.set(deployment, mean === undefined ? seconds : a * seconds + (1 - a) * mean);
  }

  private waitingOf(deployment: string): number {
    return this.waiting.reduce((n, entry) => n + (entry.deployment === deployment ? 1 : 0), 0);
  }

  private activeOf(deployment: string): number {
    let n = 0;
    for (const running of this.active.values()) if (running.deployment === deployment) n++;
    return n;
  }

  /** A waiting job whose caller gave up: removed, it never runs. (A running one is aborted in start.) */
  private cancelWaiting(entry: Entry): void {
    const index = this.waiting.indexOf(entry);
    if (index < 0) return;
    this.waiting.splice(index, 1);
    entry.stopWatching();
    entry.reject(new JobFailedError(toJobFailure(new JobCanceledError(), entry.id)));
  }

  private pump(): void {
    const processor = this.processor;
    if (!processor) return;
    for (let i = 0; i < this.waiting.length && this.active.size < this.options.concurrency;) {
      const entry = this.waiting[i]!;
      if (!this.served.has(entry.deployment)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      entry.stopWatching();
      this.start(entry, processor);
    }
  }

  private start(entry: Entry, processor: JobProcessor): void {
    const started = this.now();
    try {
      this.options.onStart?.({ id: entry.id, deployment: entry.deployment, waitedMs: started - entry.admitted });
    } catch {
      // Observability must never stop a job.
    }
    const controller = new AbortController();
    const callerSignal = entry.options.signal;
    const onCallerAbort = () => controller.abort(new JobCanceledError());
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer =
      this.options.jobTimeoutSeconds > 0
        ? setTimeout(() => controller.abort(new JobTimeoutError()), this.options.jobTimeoutSeconds * 1000)
        : null;
    let settled = false;
    const reportProgress = (progress: JobProgress) => {
      // Progress after the job settled has nobody left to reach (a queue between processes drops it too).
      if (settled) return;
      try {
        entry.options.onProgress?.(jsonCopy(progress));
      } catch {
        // A listener that throws (a closed stream) must not fail the job.
      }
    };

    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    // Registered before the job runs, so even a processor that throws at once frees its slot.
    this.active.set(entry.id, { deployment: entry.deployment, controller, done });
    void (async () => {
      try {
        // Settle when the signal fires even if the job ignores it (a hung engine), so a timed-out
        // job always ends and its slot is freed.
        const work = processor(entry.data, { id: entry.id, attempt: 1, reportProgress, signal: controller.signal });
        const result = jsonCopy(await abortable(work, controller.signal));
        settled = true;
        entry.resolve(result);
      } catch (error) {
        settled = true;
        // An aborted job fails for the reason it was aborted (timeout, shutdown, cancellation),
        // whichever of the job's own error and the abort settled first.
        entry.reject(
          new JobFailedError(toJobFailure(controller.signal.aborted ? controller.signal.reason : error, entry.id)),
        );
      } finally {
        if (timer) clearTimeout(timer);
        this.measure(entry.deployment, (this.now() - started) / 1000);
        callerSignal?.removeEventListener('abort', onCallerAbort);
        this.active.delete(entry.id);
        finish();
        this.pump();
      }
    })();
  }
}

/** What a queue between processes would deliver: the value through JSON. */
function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
