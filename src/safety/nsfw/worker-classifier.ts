// The server side of the classifier thread: classification (about 0.1–0.2 s per image on the
// wasm backend) must not stall the event loop, so the model lives in a worker thread (through
// src/runtime/worker-rpc.ts), loaded on the first image. A worker that dies fails the images it
// held; the next image starts a new one.
import type { RawImage } from '../../contract/request.ts';
import { abortable } from '../../runtime/abort.ts';
import { WorkerRequestError, WorkerRpc, WorkerStoppedError } from '../../runtime/worker-rpc.ts';
import type { NsfwClassifier } from './classifier.ts';
import type { NsfwWorkerMethods } from './protocol.ts';
import type { NsfwProbabilities } from './severity.ts';

const ENTRY = new URL('./worker.ts', import.meta.url);

export class WorkerNsfwClassifier implements NsfwClassifier {
  private rpc: WorkerRpc<NsfwWorkerMethods> | undefined;
  private ready: Promise<WorkerRpc<NsfwWorkerMethods>> | undefined;

  /** `timeoutMs` covers one image, the model's first load included. */
  constructor(private readonly options: { timeoutMs: number } = { timeoutMs: 30_000 }) {}

  async classify(image: RawImage): Promise<NsfwProbabilities> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`the image classifier gave no answer within ${this.options.timeoutMs} ms`)),
      this.options.timeoutMs,
    );
    try {
      const rpc = await abortable(this.start(), controller.signal);
      const { width, height, channels, data } = image;
      return await rpc.request('classify', { width, height, channels, data }, { signal: controller.signal });
    } catch (error) {
      if (error instanceof WorkerStoppedError) {
        throw new Error(
          error.reason === 'closed' ? 'the image classifier was closed' : `the image classifier thread ${error.what}`,
          {
            cause: error,
          },
        );
      }
      if (error instanceof WorkerRequestError)
        throw new Error(`the image classifier failed: ${error.message}`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const rpc = this.rpc;
    [this.rpc, this.ready] = [undefined, undefined];
    // Nothing native to interrupt (TensorFlow.js on wasm): the images it holds are refused at once.
    await rpc?.close({ patienceMs: 0, overdue: 'terminate' });
  }

  private start(): Promise<WorkerRpc<NsfwWorkerMethods>> {
    if (this.ready) return this.ready;
    // The thread keeps the process alive only while it holds work.
    const rpc = new WorkerRpc<NsfwWorkerMethods>(ENTRY, {
      unrefWhenIdle: true,
      onStop: () => {
        if (this.rpc === rpc) [this.rpc, this.ready] = [undefined, undefined];
      },
    });
    this.rpc = rpc;
    const ready = rpc.request('load', null).then(
      () => rpc,
      (error: unknown) => {
        // A load failure is reported to each waiting image; the next image tries again in a new thread.
        if (this.rpc === rpc) [this.rpc, this.ready] = [undefined, undefined];
        void rpc.terminate();
        throw error instanceof WorkerRequestError
          ? new Error(`the image classifier model did not load: ${error.message}`)
          : error;
      },
    );
    this.ready = ready;
    return ready;
  }
}

let shared: WorkerNsfwClassifier | undefined;

/** One classifier thread per process: apps in one process (the tests) share the loaded model. */
export function sharedNsfwClassifier(): WorkerNsfwClassifier {
  shared ??= new WorkerNsfwClassifier();
  return shared;
}
