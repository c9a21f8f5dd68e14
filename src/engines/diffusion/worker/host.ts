// The server side of a model worker: starts the thread, waits for the model to load, sends jobs
// and turns the worker's answers back into promises. A worker that dies (a native crash, out of
// memory) fails only the jobs it held; the next job starts a fresh worker.
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../../runtime/ts-worker.ts';
import type { RawImage } from '../../../contract/request.ts';
import type { PipelineJob, PipelineResult } from '../pipeline/index.ts';
import { reviveImage, type FailureKind, type PreviewPlan, type FromWorker, type ModelInfo, type ToWorker, type WorkerOptions } from './protocol.ts';

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

interface Pending {
  resolve(result: PipelineResult): void;
  reject(error: Error): void;
  onStep?: WorkerRunOptions['onStep'];
}

const ENTRY = new URL('./worker.ts', import.meta.url);

export class ModelWorker {
  private worker: Worker | undefined;
  private ready: Promise<ModelInfo> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: WorkerOptions) {}

  /** Starts the worker if needed and resolves once the model is loaded; rejects with the reason it cannot be. */
  load(): Promise<ModelInfo> {
    this.ready ??= this.spawn();
    return this.ready;
  }

  async run(job: PipelineJob, options: WorkerRunOptions): Promise<PipelineResult> {
    await this.load();
    const worker = this.worker!;
    const id = this.nextId++;
    const result = new Promise<PipelineResult>((resolve, reject) => this.pending.set(id, { resolve, reject, onStep: options.onStep }));
    const cancel = () => this.send(worker, { type: 'cancel', id });
    if (options.signal?.aborted) {
      this.pending.delete(id);
      throw new WorkerJobError('aborted', 'generation was aborted');
    }
    options.signal?.addEventListener('abort', cancel, { once: true });
    this.send(worker, { type: 'run', id, job, previews: options.previews });
    try {
      return await result;
    } finally {
      options.signal?.removeEventListener('abort', cancel);
    }
  }

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.send(worker, { type: 'close' });
    // The worker stops after the model call it is in. One that takes longer is left to end with the
    // process: terminating a thread inside onnxruntime's native run aborts the whole process.
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        worker.unref();
        resolve();
      }, 5000);
    });
    await Promise.race([exited, patience]);
    clearTimeout(timer);
  }

  private spawn(): Promise<ModelInfo> {
    return new Promise<ModelInfo>((resolve, reject) => {
      const worker = startTsWorker(ENTRY, { workerData: this.options, name: 'easel-model' });
      this.worker = worker;
      let loaded = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            loaded = true;
            resolve(message.info);
            break;
          case 'load-failed':
            // The worker ends by itself after saying so.
            reject(new ModelLoadError(message.message));
            break;
          case 'step':
            this.pending.get(message.id)?.onStep?.(message.step, message.totalSteps, message.previews?.map(reviveImage));
            break;
          case 'done': {
            const job = this.pending.get(message.id);
            this.pending.delete(message.id);
            job?.resolve({ ...message.result, images: message.result.images.map(reviveImage) });
            break;
          }
          case 'failed': {
            const job = this.pending.get(message.id);
            this.pending.delete(message.id);
            job?.reject(new WorkerJobError(message.kind, message.message));
            break;
          }
          case 'closed':
            break;
        }
      });
      // A model that failed to load stays failed (this.ready keeps the rejection); a loaded worker
      // that dies is replaced on the next job.
      worker.on('error', (error) => {
        if (!loaded) reject(new ModelLoadError(`the model worker failed while loading: ${error.message}`));
        else this.fail(worker, error);
      });
      worker.on('exit', (code) => {
        if (!loaded) reject(new ModelLoadError(`the model worker exited with code ${code} while loading`));
        else this.fail(worker, new Error(`the model worker exited with code ${code}`));
      });
    });
  }

  /** The worker is gone: fail what it held, and let the next job start a new one. */
  private fail(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.ready = undefined;
    for (const [id, job] of this.pending) {
      this.pending.delete(id);
      job.reject(new WorkerJobError('worker', this.closing ? 'the server is shutting down' : `the model worker failed: ${error.message}`));
    }
  }

  private send(worker: Worker, message: ToWorker): void {
    worker.postMessage(message);
  }
}
