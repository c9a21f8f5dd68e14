// An API node's view of the workers (scale-out): which deployments some live worker can serve now.
// Admission asks it before queueing a job, so a request that no worker could take gets its 503 at once
// instead of waiting in the queue until its client gives up; /readyz shows its counts.
import { errors } from '../contract/errors.ts';
import {
  type DeploymentWorkers,
  type LiveWorkers,
  type WorkerDirectory,
  WorkerRegistryError,
  workersFor,
} from '../jobs/worker-registry.ts';

/** How long one read of the registry answers for (so admission is not one Redis call per request). */
export const DEFAULT_WORKER_CACHE_MS = 1000;

export class WorkerGate {
  readonly #directory: WorkerDirectory;
  readonly #cacheMs: number;
  readonly #now: () => number;
  #cached: { at: number; live: LiveWorkers } | null = null;
  #reading: Promise<LiveWorkers> | null = null;

  constructor(directory: WorkerDirectory, options: { cacheMs?: number; now?: () => number } = {}) {
    this.#directory = directory;
    this.#cacheMs = options.cacheMs ?? DEFAULT_WORKER_CACHE_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The live workers, read at most once per cache period (concurrent callers share one read). A read
   * that fails is not cached: the next call tries again. Rejects with WorkerRegistryError.
   */
  async live(): Promise<LiveWorkers> {
    const cached = this.#cached;
    if (cached && this.#now() - cached.at < this.#cacheMs) return cached.live;
    this.#reading ??= this.#directory.liveWorkers().then(
      (live) => {
        this.#cached = { at: this.#now(), live };
        this.#reading = null;
        return live;
      },
      (error: unknown) => {
        this.#reading = null;
        throw error;
      },
    );
    return this.#reading;
  }

  /** A deployment's counts (zeros when no live worker has it). */
  async countsFor(deployment: string): Promise<DeploymentWorkers> {
    return workersFor(await this.live(), deployment);
  }

  /**
   * Resolves when some live worker has the deployment ready; otherwise throws the catalogue's
   * noLiveWorker (503), or queueUnavailable when the registry in Redis cannot be read.
   */
  async require(deployment: string): Promise<void> {
    let counts: DeploymentWorkers;
    try {
      counts = await this.countsFor(deployment);
    } catch (error) {
      if (error instanceof WorkerRegistryError)
        throw errors.queueUnavailable('the worker registry in Redis cannot be read');
      throw error;
    }
    if (counts.ready === 0) throw errors.noLiveWorker(deployment, counts.loading);
  }
}
