import type { EngineProgress } from '../engines/engine.ts';
import { abortable } from '../runtime/abort.ts';
import {
  type AddOptions,
  type JobProcessor,
  type JobQueue,
  JobTimeoutError,
  QueueClosedError,
  QueueFullError,
} from './queue.ts';

export interface InProcessQueueOptions {
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs waiting beyond the running ones; one more is refused with QueueFullError. */
  maxWaiting: number;
  /** A running job is aborted after this long (its signal fires). 0 = no limit. */
  jobTimeoutSeconds: number;
  /** Seconds one job is assumed to take until the first jobs have been measured (retry-after). */
  estimatedJobSeconds?: number;
  /** Milliseconds clock for measuring jobs (tests pass a fake one); default performance.now. */
  now?: () => number;
  /** Called as each job starts, with how long it waited since it was admitted (for metrics). */
  onStart?: (job: { id: string; waitedMs: number }) => void;
}

interface Entry<T, R> {
  id: string;
  data: T;
  options: AddOptions;
  /** performance.now() at admission. */
  admitted: number;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
}

/** The embedded JobQueue: FIFO, a concurrency limit and a bounded waiting list, all in memory. */
export class InProcessQueue<T, R> implements JobQueue<T, R> {
  private processor: JobProcessor<T, R> | null = null;
  private readonly waiting: Entry<T, R>[] = [];
  private readonly running = new Map<string, { controller: AbortController; done: Promise<unknown> }>();
  private closed = false;
  private readonly now: () => number;
  /** Exponentially weighted mean of the seconds jobs took to run, once one has finished. */
  private meanJobSeconds: number | null = null;

  constructor(private readonly options: InProcessQueueOptions) {
    if (options.concurrency < 1) throw new RangeError('concurrency must be at least 1');
    this.now = options.now ?? (() => performance.now());
  }

  process(processor: JobProcessor<T, R>): void {
    this.processor = processor;
    this.pump();
  }

  async add(id: string, data: T, options: AddOptions = {}): Promise<{ finished: Promise<R> }> {
    if (this.closed) throw new QueueClosedError();
    const free = this.options.concurrency - this.running.size;
    if (free <= 0 && this.waiting.length >= this.options.maxWaiting) {
      throw new QueueFullError(this.retryAfterSeconds());
    }
    const finished = new Promise<R>((resolve, reject) => {
      this.waiting.push({ id, data, options, admitted: this.now(), resolve, reject });
    });
    // A job that was admitted but is only awaited later must not count as an unhandled rejection.
    finished.catch(() => {});
    this.pump();
    return { finished };
  }

  counts() {
    return { waiting: this.waiting.length, active: this.running.size };
  }

  async close({ graceSeconds = 0 }: { graceSeconds?: number } = {}): Promise<void> {
    this.closed = true;
    for (const entry of this.waiting.splice(0))
      entry.reject(new QueueClosedError('the queue closed before the job started'));
    const settled = Promise.allSettled([...this.running.values()].map((r) => r.done));
    if (graceSeconds > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, graceSeconds * 1000)))]);
      clearTimeout(timer);
    }
    for (const { controller } of this.running.values()) controller.abort(new QueueClosedError());
    await settled;
  }

  /**
   * Seconds until a slot is likely free: the jobs ahead (waiting and running) times the measured
   * mean job duration, divided among the workers. Before any job has finished, the configured guess.
   */
  retryAfterSeconds(): number {
    const perJob = this.meanJobSeconds ?? this.options.estimatedJobSeconds ?? 2;
    const ahead = this.waiting.length + this.running.size;
    // The openai client honours retry-after only below 60 s; above that it uses its own backoff.
    return Math.min(59, Math.max(1, Math.ceil((ahead * perJob) / this.options.concurrency)));
  }

  /** Weight of the newest job in the mean: recent throughput matters, one outlier does not dominate. */
  private static readonly SMOOTHING = 0.2;

  private measure(seconds: number): void {
    const a = InProcessQueue.SMOOTHING;
    this.meanJobSeconds = this.meanJobSeconds === null ? seconds : a * seconds + (1 - a) * this.meanJobSeconds;
  }

  private pump(): void {
    while (this.processor && this.running.size < this.options.concurrency && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      if (entry.options.signal?.aborted) {
        entry.reject(entry.options.signal.reason ?? new Error('aborted before it started'));
        continue;
      }
      this.start(entry, this.processor);
    }
  }

  private start(entry: Entry<T, R>, processor: JobProcessor<T, R>): void {
    const started = this.now();
    try {
      this.options.onStart?.({ id: entry.id, waitedMs: started - entry.admitted });
    } catch {
      // Observability must never stop a job.
    }
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(entry.options.signal?.reason);
    entry.options.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer =
      this.options.jobTimeoutSeconds > 0
        ? setTimeout(() => controller.abort(new JobTimeoutError()), this.options.jobTimeoutSeconds * 1000)
        : null;
    const reportProgress = (progress: EngineProgress) => {
      try {
        entry.options.onProgress?.(progress);
      } catch {
        // A listener that throws (a closed stream) must not fail the job.
      }
    };

    const done = (async () => {
      try {
        // Settle when the signal fires even if the job ignores it (a hung engine), so a timed-out
        // job always ends and its slot is freed.
        const work = processor(entry.data, { id: entry.id, reportProgress, signal: controller.signal });
        entry.resolve(await abortable(work, controller.signal));
      } catch (error) {
        // An aborted job fails for the reason it was aborted (timeout, shutdown), whichever of the
        // job's own error and the abort settled first.
        entry.reject(
          controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : error,
        );
      } finally {
        if (timer) clearTimeout(timer);
        this.measure((this.now() - started) / 1000);
        entry.options.signal?.removeEventListener('abort', onCallerAbort);
        this.running.delete(entry.id);
        this.pump();
      }
    })();
    this.running.set(entry.id, { controller, done });
  }
}
