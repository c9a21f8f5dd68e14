import type { EngineProgress } from '../engines/engine.ts';

/** Raised by `add` when the bounded queue is full; becomes a 429 with retry-after. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('the job queue is full');
    this.name = 'QueueFullError';
  }
}

/** The reason a job is aborted or refused because the queue is shutting down (not the job's fault). */
export class QueueClosedError extends Error {
  constructor(message = 'the job queue is shutting down') {
    super(message);
    this.name = 'QueueClosedError';
  }
}

/** The reason a job's signal fires when it ran past the queue's time limit. */
export class JobTimeoutError extends Error {
  constructor() {
    super('the job ran past its time limit');
    this.name = 'JobTimeoutError';
  }
}

export interface JobContext {
  id: string;
  reportProgress(progress: EngineProgress): void;
  /** Aborted when the job times out or the queue closes. */
  signal: AbortSignal;
}

export type JobProcessor<T, R> = (data: T, context: JobContext) => Promise<R>;

export interface AddOptions {
  onProgress?: (progress: EngineProgress) => void;
  /** Abort a job that has not finished (client went away). */
  signal?: AbortSignal;
}

/**
 * Runs jobs with a concurrency limit and a bounded number waiting. Embedded adapter: an in-process
 * queue; a BullMQ adapter can follow the same contract (test/jobs/queue.contract.ts).
 */
export interface JobQueue<T, R> {
  /** The function that runs each job; set once, before the first `add`. */
  process(processor: JobProcessor<T, R>): void;
  /**
   * Admit a job. Resolves once it is admitted, with a promise of its result; rejects with
   * QueueFullError when the queue is full (nothing is admitted then).
   */
  add(id: string, data: T, options?: AddOptions): Promise<{ finished: Promise<R> }>;
  counts(): { waiting: number; active: number };
  /** Seconds a refused client should wait before retrying (the 429's retry-after), from 1 to 59. */
  retryAfterSeconds(): number;
  /**
   * Stop admitting; refuse the waiting jobs with QueueClosedError; give running jobs up to
   * `graceSeconds` to finish, then abort them with QueueClosedError and wait for them to settle.
   */
  close(options?: { graceSeconds?: number }): Promise<void>;
}
