// The server side of a model worker: starts the thread, waits for the model to load, sends jobs
// and turns the worker's answers back into promises (through src/runtime/worker-rpc.ts). A worker
// that dies (a native crash, out of memory) fails only the jobs it held; the next job starts a
// fresh worker.
import type { RawImage } from '../../../contract/request.ts';
import { WorkerRequestError, WorkerRpc, WorkerStoppedError } from '../../../runtime/worker-rpc.ts';
import type { PipelineJob, PipelineResult } from '../pipeline/index.ts';
import {
  type FailureKind,
  failureKind,
  type ModelInfo,
  type ModelWorkerMethods,
  type PreviewPlan,
  reviveImage,
  type WorkerOptions,
} from './protocol.ts';

export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

/** A job that ended in the worker without a result. */
export class WorkerJobError extends Error {
  constructor(
    readonly kind: FailureKind | 'worker',
    message: string,
  ) {
    super(message);
    this.name = 'WorkerJobError';
  }
}

export interface WorkerRunOptions {
  /** Which steps stream a preview; null: none. */
  previews: PreviewPlan | null;
  onStep?: (step: number, totalSteps: number, previews?: RawImage[]) => void;
  signal?: AbortSignal;
}

const ENTRY = new URL('./worker.ts', import.meta.url);
/**
 * How long close() lets the worker stop the job it is in. It is never terminated: terminating a
 * thread inside onnxruntime's native run aborts the whole process; one that takes longer is left
 * to end with the process.
 */
const CLOSE_PATIENCE_MS = 5000;

export class ModelWorker {
  /** The current thread; protected so that tests can end it as a crash would. */
  protected rpc: WorkerRpc<ModelWorkerMethods> | undefined;
  private ready: Promise<ModelInfo> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: WorkerOptions) {}

  /** Starts the worker if needed and resolves once the model is loaded; rejects with the reason it cannot be. */
  load(): Promise<ModelInfo> {
    this.ready ??= this.spawn();
    return this.ready;
  }

  async run(job: PipelineJob, options: WorkerRunOptions): Promise<PipelineResult> {
    await this.load();
    const { signal, onStep } = options;
    if (signal?.aborted) throw new WorkerJobError('aborted', 'generation was aborted');
    try {
      const result = await this.rpc!.request(
        'run',
        { job, previews: options.previews },
        { signal, onProgress: (p) => onStep?.(p.step, p.totalSteps, p.previews?.map(reviveImage)) },
      );
      return { ...result, images: result.images.map(reviveImage) };
    } catch (error) {
      throw this.jobError(error, signal);
    }
  }

  close(): Promise<void> {
    // The worker stops the jobs it holds after the model call each is in, releases the sessions and ends.
    this.closing ??=
      this.rpc?.close({ patienceMs: CLOSE_PATIENCE_MS, cancel: true, overdue: 'abandon' }) ?? Promise.resolve();
    return this.closing;
  }

  private async spawn(): Promise<ModelInfo> {
    let loaded = false;
    const rpc = new WorkerRpc<ModelWorkerMethods>(ENTRY, {
      name: 'easel-model',
      // A model that failed to load stays failed (this.ready keeps the rejection); a loaded worker
      // that dies is replaced on the next job.
      onStop: () => {
        if (loaded && this.rpc === rpc) [this.rpc, this.ready] = [undefined, undefined];
      },
    });
    this.rpc = rpc;
    try {
      const info = await rpc.request('load', this.options);
      loaded = true;
      return info;
    } catch (error) {
      // The thread holds nothing after a failed load, so ending it here is safe.
      void rpc.terminate();
      if (error instanceof WorkerStoppedError) throw new ModelLoadError(`the model worker ${error.what} while loading`);
      throw new ModelLoadError((error as Error).message);
    }
  }

  private jobError(error: unknown, signal: AbortSignal | undefined): Error {
    if (signal?.aborted && error === signal.reason) return new WorkerJobError('aborted', 'generation was aborted');
    if (error instanceof WorkerRequestError) return new WorkerJobError(failureKind(error.remoteName), error.message);
    if (error instanceof WorkerStoppedError) {
      return new WorkerJobError(
        'worker',
        this.closing || error.reason === 'closed' ? 'the server is shutting down' : `the model worker ${error.what}`,
      );
    }
    return error as Error;
  }
}
