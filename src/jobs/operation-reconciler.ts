/**
 * Scale-out only: ends DALL-E 2 operations that their queue job can no longer end. An API node that
 * submitted an operation fails it when its job ends failed (Operations, settleLostJobs); when that
 * node died too, nobody hears of the job's end, and this pass, run by every API node, finds the
 * operation instead: still notRunning or running, not updated for `graceSeconds`, and its job
 * failed, finished or gone from the queue. Such an operation is failed (workerLost). A job still
 * waiting or running is left alone, however long it waits. Every move is the store's compare-and-set,
 * so nodes running the pass at once, or a worker writing the outcome at that moment, never conflict.
 * See docs/scale-out.md, "Operations across processes".
 */
import { operationErrors } from '../contract/errors.ts';
import type { JobState } from './bullmq-queue.ts';
import type { OperationStore } from './operation-store.ts';

export interface OperationReconcilerOptions {
  store: OperationStore;
  /** The queue's account of an operation's job (its id is the operation's). */
  jobState(deployment: string, id: string): Promise<JobState>;
  /**
   * How long an open operation must have been left unchanged before its job is looked up: longer
   * than an operation takes between its record and its job being added, and than a dead worker's
   * job takes to be handed on (lock time plus two stall checks).
   */
  graceSeconds: number;
  intervalSeconds: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
}

export class OperationReconciler {
  readonly #options: OperationReconcilerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;

  constructor(options: OperationReconcilerOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(
      () => void this.reconcileOnce().catch(() => undefined),
      this.#options.intervalSeconds * 1000,
    );
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /** One pass; resolves to the number of operations failed. A pass never overlaps another. */
  reconcileOnce(): Promise<number> {
    this.#running ??= this.#pass().finally(() => (this.#running = null));
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { store, jobState, graceSeconds, log } = this.#options;
    const before = this.#now() - graceSeconds;
    let failed = 0;
    try {
      for (const record of await store.listOperations(['notRunning', 'running'])) {
        if (record.updated > before) continue;
        const state = await jobState(record.deployment, record.id);
        if (state === 'waiting' || state === 'active') continue;
        const moved = await store.transition(record.id, [record.status], {
          status: 'failed',
          updated: this.#now(),
          error: operationErrors.workerLost,
        });
        if (moved) {
          failed++;
          log.info(
            { operationId: record.id, job: state, was: record.status },
            'operation failed: its job ended without it',
          );
        }
      }
    } catch (error) {
      log.warn({ err: error }, 'operation reconcile pass failed; the next pass tries again');
    }
    return failed;
  }
}
