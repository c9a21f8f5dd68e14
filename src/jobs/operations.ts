import { rejectOnAbort } from './abort.ts';
import { randomUUID } from 'node:crypto';
import { operationErrors } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import {
  TERMINAL_STATUSES,
  type OperationError,
  type OperationRecord,
  type OperationStatus,
  type OperationStore,
} from './operation-store.ts';
import { JobTimeoutError, QueueClosedError, type JobQueue } from './queue.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { GenerationResult, JobData } from './runner.ts';

export interface OperationsDeps {
  store: OperationStore;
  blobs: BlobStore;
  queue: JobQueue<JobData, GenerationResult>;
  /** How long an operation and its images are kept (Azure: 24 hours). */
  ttlSeconds: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
}

/**
 * The DALL-E 2 operation lifecycle. Status changes only through the named moves below
 * (notRunning → running → succeeded | failed | canceled, terminal → deleted), each an atomic
 * compare-and-set in the store, so a late writer can never overwrite a later state.
 */
export class Operations {
  private readonly now: () => number;

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
      await this.deps.store.deleteOperation(record.id);
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

  /** The job body of an operation: the state moves around the runner's work. */
  async runJob(id: string, signal: AbortSignal, work: () => Promise<GenerationResult>): Promise<GenerationResult> {
    if (!(await this.move(id, ['notRunning'], 'running'))) {
      throw new Error(`operation ${id} is no longer waiting to run`);
    }
    try {
      const result = await Promise.race([work(), rejectOnAbort(signal)]);
      await this.move(id, ['running'], 'succeeded', {
        result: {
          created: result.created,
          items: result.items.map((item) =>
            item.filtered ? { error: item.reason ? operationErrors.imageFilteredBy(item.reason) : operationErrors.imageFiltered } : { imageId: item.stored!.id },
          ),
        },
      });
      return result;
    } catch (error) {
      if (signal.reason instanceof QueueClosedError) {
        // Shutting down is not the operation's fault: it runs again after the restart.
        await this.move(id, ['running'], 'notRunning');
      } else if (signal.reason instanceof JobTimeoutError) {
        await this.move(id, ['running'], 'canceled', { error: operationErrors.timedOut });
      } else {
        await this.move(id, ['running'], 'failed', { error: operationErrors.engineFailed(messageOf(error)) });
      }
      throw error;
    }
  }

  /**
   * After a restart: operations that were running are failed (their work is lost), and those that
   * were waiting are queued again, so none stays in a non-terminal state forever.
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
    const { finished } = await this.deps.queue.add(id, { request, operationId: id });
    finished.catch((error) => {
      if (error instanceof QueueClosedError) this.deps.log.info({ operationId: id }, 'operation left waiting; it runs after the next start');
      else this.deps.log.warn({ operationId: id, err: messageOf(error) }, 'operation failed');
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

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
