/**
 * The job contract: what crosses between the process that admits a job (the server, or an API node)
 * and the process that runs it (the server itself, or a worker). Everything here is JSON: pixels and
 * encoded images never travel inside a job; they go through the blob store by key. Failures travel
 * as catalogue errors (status, code, message, param), never as Error classes.
 *
 * Both queue adapters implement this same contract: the in-process queue (embedded mode) and BullMQ
 * on Redis (scale-out). See docs/scale-out.md, "The job contract".
 */
import type { ProbedUpload } from '../codec/index.ts';
import type { ContentFilterResults } from '../contract/annotations.ts';
import type { WireError } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';

/** Blob-store keys of a job's short-lived files (uploads, previews, b64_json results) start with this. */
export const TRANSIENT_PREFIX = 'transient/';

/** One edit upload in the blob store: still compressed, as sent, with what its header told. */
export interface UploadRef extends ProbedUpload {
  key: string;
}

/** What a job carries. `request.images` and `request.mask` are empty: the uploads stand for them. */
export interface JobData {
  request: ImageRequest;
  /** Set for DALL-E 2 operations: stored images belong to it and are swept with it. */
  operationId: string | null;
  /** Edits: the uploads in the blob store (under TRANSIENT_PREFIX), decoded when the job starts. */
  uploads?: { images: UploadRef[]; mask: UploadRef | null; maxInputPixels: number };
}

/** An image the filter let through, encoded, in the blob store. */
export interface DeliveredImage {
  filtered: false;
  contentType: string;
  contentFilterResults: ContentFilterResults;
  /** Where the encoded bytes are. */
  key: string;
  /**
   * Set when the image was stored for a URL (response_format url, DALL-E 2 operations): its record
   * in the operation store. Null for b64_json: `key` is then transient, and the admitting side reads
   * it once and deletes it.
   */
  stored: { id: string; expires: number } | null;
}

/** An image the filter withheld: never stored. */
export interface WithheldImage {
  filtered: true;
  contentFilterResults: ContentFilterResults;
  /** Which filter and category withheld it, for the answer. */
  reason?: string;
}

export interface JobResult {
  /** Unix seconds. */
  created: number;
  revisedPrompt: string | null;
  items: (DeliveredImage | WithheldImage)[];
}

/**
 * Progress of a running job. Partial images (gpt-image-1 streaming) are filtered and encoded by the
 * process that runs the job and stored under TRANSIENT_PREFIX; the side holding the client's
 * connection reads each once, sends it and deletes it.
 */
export interface JobProgress {
  /** 1-based step just finished. */
  step: number;
  totalSteps: number;
  partialImages?: { image: number; partialImageIndex: number; key: string }[];
}

/** A failed job as it crosses processes: the catalogue error its client receives. */
export interface JobFailure {
  status: number;
  error: WireError;
  /** The retry-after the error asks of its client (a 503 of a service that is away), when it does. */
  retryAfterSeconds?: number;
}

/** How `finished` rejects when a job failed: the catalogue error, whichever process ran the job. */
export class JobFailedError extends Error {
  constructor(readonly failure: JobFailure) {
    super(failure.error.message);
    this.name = 'JobFailedError';
  }
}

/** Raised by `add` when the queue is full; becomes a 429 with retry-after. Nothing was admitted. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('the job queue is full');
    this.name = 'QueueFullError';
  }
}

export interface AddOptions {
  onProgress?: (progress: JobProgress) => void;
  /**
   * Cancel the job (the client went away): a waiting job is removed, a running one is aborted in
   * whichever process runs it.
   */
  signal?: AbortSignal;
  /**
   * The job outlives the process that admitted it (DALL-E 2 operations, which any API node may poll):
   * `close` neither fails nor cancels it; `finished` still settles while this producer lives.
   */
  detached?: boolean;
}

/** The admitting side: API nodes, and the embedded server. */
export interface JobProducer {
  /**
   * Admit a job to its deployment's queue (`data.request.deployment`). Resolves once admitted, with
   * a promise of its result, which rejects with JobFailedError; rejects with QueueFullError when full.
   */
  add(id: string, data: JobData, options?: AddOptions): Promise<{ finished: Promise<JobResult> }>;
  /** Jobs waiting and running for a deployment, across every process that shares the queue. */
  counts(deployment: string): Promise<{ waiting: number; active: number }>;
  /** Seconds a refused client should wait before retrying (the 429's retry-after), from 1 to 59. */
  retryAfterSeconds(deployment: string): Promise<number>;
  /** Stop admitting; the jobs this process admitted and still waits for end with a shutdown failure. */
  close(options?: { graceSeconds?: number }): Promise<void>;
}

export interface JobContext {
  id: string;
  /** 1 for a job's first run; more when a job is taken over after its worker died. */
  attempt: number;
  reportProgress(progress: JobProgress): void;
  /** Aborted when the job times out, is cancelled, or the process shuts down (the reason says which). */
  signal: AbortSignal;
}

/** Runs one job; throws an ApiError of the catalogue (or anything, which becomes an internal error). */
export type JobProcessor = (data: JobData, context: JobContext) => Promise<JobResult>;

/** The running side: workers, and the embedded server. */
export interface JobConsumer {
  /** Start taking jobs of these deployments; call once. */
  process(deployments: readonly string[], processor: JobProcessor): void;
  /** Jobs running in this process now. */
  running(): number;
  /**
   * Stop taking jobs; give running ones up to `graceSeconds` to finish, then abort them with a
   * shutdown reason and wait for them to settle.
   */
  close(options?: { graceSeconds?: number }): Promise<void>;
}
