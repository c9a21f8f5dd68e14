/**
 * How a job's failure leaves the process that ran it: whatever the processor threw becomes one
 * catalogue error (a JobFailure), which every queue adapter hands to the admitting side as a
 * JobFailedError. The abort reasons below are local to the consuming process: they tell the job
 * (and toJobFailure) why its signal fired, and never cross a queue themselves.
 */
import { ApiError, errors } from '../contract/errors.ts';
import { EngineAbortedError, EngineError } from '../engines/engine.ts';
import { StorageUnavailableError } from '../storage/index.ts';
import { isDatabaseUnavailable } from './database-errors.ts';
import type { JobFailure } from './job-contract.ts';

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

/** The reason a job's signal fires when the admitting side cancelled it (its client went away). */
export class JobCanceledError extends Error {
  constructor() {
    super('the job was cancelled by its caller');
    this.name = 'JobCanceledError';
  }
}

/**
 * The catalogue error a failed job ends with. `error` is what the processor threw, or the abort
 * reason when the job's signal fired. An ApiError crosses as it is; an engine's account of a model
 * failure becomes generationFailed (with internals redacted by the catalogue); a timeout, a shutdown,
 * a cancellation, an unreachable blob store and an unreachable database their own codes; anything else an internal error naming the job id, never the
 * error's own text (paths, errno codes), which only the consuming process's log sees.
 */
export function toJobFailure(error: unknown, jobId: string): JobFailure {
  return failureOf(apiErrorOf(error, jobId));
}

function apiErrorOf(error: unknown, jobId: string): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof JobTimeoutError) return errors.generationTimedOut();
  if (error instanceof QueueClosedError) return errors.shuttingDown(jobId);
  if (error instanceof JobCanceledError) return errors.jobCanceled(jobId);
  if (error instanceof StorageUnavailableError) return errors.storageUnavailable(jobId);
  // The operation database (a worker writes image records and operation states) is down: 503, as the
  // API node answers the same outage, rather than an internal error.
  if (isDatabaseUnavailable(error)) return errors.databaseUnavailable(jobId);
  if (error instanceof EngineError && !(error instanceof EngineAbortedError))
    return errors.generationFailed(error.message, jobId);
  return errors.internal(jobId);
}

/** A catalogue error as it crosses processes: its status, its wire body and its retry-after. */
export function failureOf(error: ApiError): JobFailure {
  const retryAfter = Number(error.headers['retry-after']);
  return {
    status: error.status,
    error: error.toWire().error,
    ...(Number.isInteger(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
  };
}
