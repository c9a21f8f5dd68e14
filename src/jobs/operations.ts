import { randomUUID } from 'node:crypto';

import { operationErrors } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import { EngineError } from '../engines/engine.ts';
import { abortable } from '../runtime/abort.ts';
import type { BlobStore } from '../storage/index.ts';
import { JobFailedError, type JobProducer, type JobResult } from './job-contract.ts';
import { JobTimeoutError, QueueClosedError } from './job-failure.ts';
import {
  type OperationError,
  type OperationRecord,
  type OperationStatus,
  type OperationStore,
  TERMINAL_STATUSES,
} from './operation-store.ts';

export interface OperationsDeps {
  store: OperationStore;
  blobs: BlobStore;
  /** Where operations are queued; their jobs call runJob in whichever process runs them. */
  queue: JobProducer;
  /** How long an operation and its images are kept (Azure: 24 hours). */
  ttlSeconds: number;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
  now?: () => number;
  /**
   * First wait before a state write that failed (a full disk, a locked database) is tried again,
   * doubling up to a minute; default 1000 ms. Tests pass a few milliseconds.
   */
  retryBaseMs?: number;
  /**
   * Scale-out: the queue, not this process, keeps jobs across restarts, and a job may end in the
   * queue without any worker recording the operation's outcome (its workers were killed on every
   * attempt, or a worker shut down with nobody to hand the job to). With this set, when the job of
   * an operation this process submitted ends failed and the operation is still notRunning or
   * running, it is failed here (workerLost). Jobs are also added detached, so this process's
   * shutdown does not cancel them. Embedded mode leaves it off: recover() resumes operations there.
   */
  settleLostJobs?: boolean;
}

/** The longest wait between two tries of a state write. */
const MAX_RETRY_MS = 60_000;

interface PendingWrite {
  from: readonly OperationStatus[];
  to: OperationStatus;
  patch: { result?: OperationRecord['result']; error?: OperationError };
  attempts: number;
  timer: NodeJS.Timeout | null;
}

/**
 * The DALL-E 2 operation lifecycle. Status changes only through the named moves below
 * (notRunning → running → succeeded | failed | canceled, terminal → deleted), each an atomic
 * compare-and-set in the store, so a late writer can never overwrite a later state.
 */
export class Operations {
  private readonly now: () => number;
  /** Final state writes that failed and are tried again, by operation id. */
  private readonly pending = new Map<string, PendingWrite>();
  private closed = false;

  constructor(private readonly deps: OperationsDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Record a new operation and queue it. Throws QueueFullError (and records nothing) when full. */
  async submit(request: ImageRequest): Promise<OperationRecord> {
    const record = this.newRecord(request, 'notRunning');
    await this.deps.store.createOperation(record);
    try {
      await this.enqueue(record.id, request);
    } catch (error) {
      try {
        await this.deps.store.deleteOperation(record.id);
      } catch (deleteError) {
        // The client hears of the refusal; the record must still end rather than wait forever.
        this.deps.log.error({ operationId: record.id, err: deleteError }, 'could not remove a refused operation');
        await this.settle(record.id, ['notRunning'], 'failed', { error: operationErrors.internal(record.id) });
      }
      throw error;
    }
    return record;
  }

  /** A prompt the filter blocked: the operation exists, already failed, as Azure reports it. */
  async submitFiltered(request: ImageRequest): Promise<OperationRecord> {
    const record = { ...this.newRecord(request, 'failed'), error: operationErrors.promptFiltered };
    await this.deps.store.createOperation(record);
    return record;
  }

  get(id: string): Promise<OperationRecord | null> {
    return this.deps.store.getOperation(id);
  }

  /** Terminal → deleted, removing the images. Returns the status that prevented it, if any. */
  async delete(id: string): Promise<{ deleted: true } | { deleted: false; status: OperationStatus | null }> {
    if (await this.move(id, TERMINAL_STATUSES, 'deleted')) {
      for (const image of await this.deps.store.listImagesOfOperation(id)) {
        await this.deps.blobs.delete(image.key);
        await this.deps.store.deleteImage(image.id);
      }
      return { deleted: true };
    }
    const current = await this.deps.store.getOperation(id);
    return { deleted: false, status: current?.status ?? null };
  }

  /**
   * The job body of an operation, run by the queue's consumer: the state moves around the runner's
   * work. The final move is retried until it is written (settle), so a store that fails for a while
   * (a full disk) delays an operation's end but never strands it. `signal` is the job's: its local
   * abort reason tells a shutdown from a timeout.
   */
  async runJob(id: string, signal: AbortSignal, work: () => Promise<JobResult>, attempt = 1): Promise<JobResult> {
    // A later attempt (the worker of the previous one died, and the queue handed the job on) finds
    // the operation still running: it takes it over.
    const from: OperationStatus[] = attempt > 1 ? ['notRunning', 'running'] : ['notRunning'];
    let started: boolean;
    try {
      started = await this.move(id, from, 'running');
    } catch (error) {
      // Without the running state recorded the job cannot go on; it fails once the store recovers.
      this.deps.log.error({ operationId: id, err: error }, 'could not record that the operation started');
      await this.settle(id, from, 'failed', { error: operationErrors.internal(id) });
      throw error;
    }
    if (!started) throw new Error(`operation ${id} is no longer waiting to run`);
    let result: JobResult;
    try {
      result = await abortable(work(), signal);
    } catch (error) {
      if (signal.reason instanceof QueueClosedError) {
        // Shutting down is not the operation's fault: it runs again after the restart (and if this
        // write fails, the restart's recovery ends it as interrupted).
        this.deps.log.info({ operationId: id }, 'operation cut short by shutdown; it runs after the next start');
        await this.move(id, ['running'], 'notRunning').catch((e: unknown) =>
          this.deps.log.error({ operationId: id, err: e }, 'could not requeue operation'),
        );
        throw error;
      }
      // The whole error (path, errno, stack) goes to the log only; the operation says what clientError allows.
      this.deps.log.error({ operationId: id, err: error }, 'operation failed');
      if (signal.reason instanceof JobTimeoutError) {
        await this.settle(id, ['running'], 'canceled', { error: operationErrors.timedOut });
      } else {
        await this.settle(id, ['running'], 'failed', { error: clientError(id, error) });
      }
      throw error;
    }
    await this.settle(id, ['running'], 'succeeded', {
      result: {
        created: result.created,
        items: result.items.map((item) =>
          item.filtered
            ? { error: item.reason ? operationErrors.imageFilteredBy(item.reason) : operationErrors.imageFiltered }
            : { imageId: item.stored!.id },
        ),
      },
    });
    return result;
  }

  /** Operations whose final state is still waiting to be written. */
  pendingWrites(): number {
    return this.pending.size;
  }

  /** Stop retrying: one last try of each pending write; what still fails is ended by the next start's recovery. */
  async close(): Promise<void> {
    this.closed = true;
    const left = [...this.pending.entries()];
    this.pending.clear();
    for (const [id, write] of left) {
      if (write.timer) clearTimeout(write.timer);
      await this.move(id, write.from, write.to, write.patch).catch((error: unknown) =>
        this.deps.log.error(
          { operationId: id, status: write.to, err: error },
          'operation state not written before shutdown; the next start ends it',
        ),
      );
    }
  }

  /**
   * After a restart: operations that were running are failed (their work is lost), and those that
   * were waiting are queued again, so none stays in a non-terminal state forever. This is the
   * embedded rule, where the one process that starts is the only one that ran jobs; with several
   * processes sharing a queue (docs/scale-out.md) a starting node must not fail what others run.
   */
  async recover(): Promise<{ resumed: number; failed: number }> {
    let resumed = 0;
    let failed = 0;
    for (const record of await this.deps.store.listOperations(['running'])) {
      if (await this.move(record.id, ['running'], 'failed', { error: operationErrors.interrupted })) failed++;
    }
    for (const record of await this.deps.store.listOperations(['notRunning'])) {
      try {
        await this.enqueue(record.id, record.request as unknown as ImageRequest);
        resumed++;
      } catch (error) {
        this.deps.log.warn({ operationId: record.id, err: messageOf(error) }, 'could not resume operation');
        if (await this.move(record.id, ['notRunning'], 'failed', { error: operationErrors.interrupted })) failed++;
      }
    }
    return { resumed, failed };
  }

  private async enqueue(id: string, request: ImageRequest): Promise<void> {
    const lost = this.deps.settleLostJobs === true;
    const { finished } = await this.deps.queue.add(id, { request, operationId: id }, { detached: lost });
    // The job's own outcome is written (and its cause logged) by runJob, where the job runs; here
    // only a job that never ran is worth a line (it was still waiting at shutdown).
    finished.catch((error: unknown) => {
      if (!(error instanceof JobFailedError)) return;
      this.deps.log.info({ operationId: id, code: error.failure.error.code }, 'operation job ended without a result');
      // runJob writes the outcome before its job ends, so an operation still open here was left by
      // workers that died or shut down; the compare-and-set leaves one that has ended as it is.
      if (lost) void this.settle(id, ['notRunning', 'running'], 'failed', { error: operationErrors.workerLost });
    });
  }

  private newRecord(request: ImageRequest, status: OperationStatus): OperationRecord {
    const created = this.now();
    return {
      id: randomUUID(),
      status,
      deployment: request.deployment,
      // Generation requests carry no pixels, so the request is plain JSON.
      request: { ...request } as unknown as Record<string, unknown>,
      created,
      expires: created + this.deps.ttlSeconds,
      updated: created,
      result: null,
      error: null,
    };
  }

  /**
   * A final state move that must happen: tried now, and if the store throws, again after a growing
   * wait until it is written, or the operation has moved on, or the service closes.
   */
  private async settle(
    id: string,
    from: readonly OperationStatus[],
    to: OperationStatus,
    patch: PendingWrite['patch'],
  ): Promise<void> {
    try {
      await this.move(id, from, to, patch);
    } catch (error) {
      this.deps.log.error({ operationId: id, status: to, err: error }, 'could not write the operation state; retrying');
      this.retryLater(id, { from, to, patch, attempts: 1, timer: null });
    }
  }

  private retryLater(id: string, write: PendingWrite): void {
    if (this.closed) return;
    const base = this.deps.retryBaseMs ?? 1000;
    const delay = Math.min(MAX_RETRY_MS, base * 2 ** Math.min(write.attempts - 1, 16));
    this.pending.set(id, write);
    write.timer = setTimeout(() => {
      write.timer = null;
      this.move(id, write.from, write.to, write.patch).then(
        () => this.pending.delete(id),
        (error: unknown) => {
          if (this.pending.get(id) !== write) return; // closed meanwhile
          this.deps.log.warn(
            { operationId: id, status: write.to, attempts: write.attempts, err: messageOf(error) },
            'operation state still not written; retrying',
          );
          this.retryLater(id, { ...write, attempts: write.attempts + 1 });
        },
      );
    }, delay);
    // A pending write must not keep a stopping process alive: close() makes the last try.
    write.timer.unref();
  }

  private async move(
    id: string,
    from: readonly OperationStatus[],
    to: OperationStatus,
    patch: { result?: OperationRecord['result']; error?: OperationError } = {},
  ): Promise<boolean> {
    const moved = await this.deps.store.transition(id, from, { status: to, updated: this.now(), ...patch });
    if (moved) this.deps.log.info({ operationId: id, status: to }, 'operation state');
    return moved !== null;
  }
}

/**
 * What a failed operation tells its client: an engine's account of a model failure (with internals
 * redacted), or for anything else (the disk, the database, a library) the catalogue's message and the
 * operation id, never the error's own text, which can carry paths and errno codes.
 */
function clientError(id: string, error: unknown): OperationError {
  if (error instanceof EngineError) return operationErrors.engineFailed(error.message);
  return operationErrors.internal(id);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
