// The server side of the classifier thread: classification (about 0.1–0.2 s per image on the
// wasm backend) must not stall the event loop, so the model lives in a worker thread, loaded on
// the first image. A worker that dies fails the images it held; the next image starts a new one.
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../runtime/ts-worker.ts';
import type { RawImage } from '../../contract/request.ts';
import type { NsfwClassifier } from './classifier.ts';
import type { FromClassifier, ToClassifier } from './protocol.ts';
import type { NsfwProbabilities } from './severity.ts';

const ENTRY = new URL('./worker.ts', import.meta.url);

interface Pending {
  resolve(p: NsfwProbabilities): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class WorkerNsfwClassifier implements NsfwClassifier {
  private worker: Worker | undefined;
  private ready: Promise<Worker> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** `timeoutMs` covers one image, the model's first load included. */
  constructor(private readonly options: { timeoutMs: number } = { timeoutMs: 30_000 }) {}

  async classify(image: RawImage): Promise<NsfwProbabilities> {
    const id = this.nextId++;
    const result = new Promise<NsfwProbabilities>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(id, new Error(`the image classifier gave no answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    // The thread keeps the process alive only while it holds work.
    this.worker?.ref();
    this.start().then(
      (worker) => {
        if (!this.pending.has(id)) return;
        worker.ref();
        const message: ToClassifier = { type: 'classify', id, width: image.width, height: image.height, channels: image.channels, data: image.data };
        worker.postMessage(message);
      },
      (error: Error) => this.settle(id, error),
    );
    return result;
  }

  async close(): Promise<void> {
    for (const id of [...this.pending.keys()]) this.settle(id, new Error('the image classifier was closed'));
    const worker = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    await worker?.terminate();
  }

  private start(): Promise<Worker> {
    this.ready ??= new Promise<Worker>((resolve, reject) => {
      const worker = startTsWorker(ENTRY);
      this.worker = worker;
      worker.on('message', (message: FromClassifier) => {
        if (message.type === 'ready') resolve(worker);
        else if (message.type === 'loadFailed') reject(new Error(`the image classifier model did not load: ${message.message}`));
        else if (message.type === 'result') this.settle(message.id, null, message.probabilities);
        else this.settle(message.id, new Error(`the image classifier failed: ${message.message}`));
      });
      const died = (error: Error) => {
        if (this.worker !== worker) return;
        this.worker = undefined;
        this.ready = undefined;
        reject(error);
        for (const id of [...this.pending.keys()]) this.settle(id, error);
      };
      worker.on('error', (error) => died(new Error(`the image classifier thread crashed: ${error.message}`)));
      worker.on('exit', (code) => died(new Error(`the image classifier thread exited (code ${code})`)));
    });
    // A load failure is reported to each waiting image; the next image tries again.
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
  }

  private settle(id: number, error: Error | null, probabilities?: NsfwProbabilities): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve(probabilities!);
    if (this.pending.size === 0) this.worker?.unref();
  }
}

let shared: WorkerNsfwClassifier | undefined;

/** One classifier thread per process: apps in one process (the tests) share the loaded model. */
export function sharedNsfwClassifier(): WorkerNsfwClassifier {
  shared ??= new WorkerNsfwClassifier();
  return shared;
}
