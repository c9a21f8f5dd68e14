// Numbered requests to a worker thread, the server's side: the diffusion model workers and the
// safety classifiers each keep a model in a thread of its own and talk to it through this.
// worker-rpc-serve.ts is the thread's side.
//
// What it does for them: a pending request per id, answers and progress routed back to it, an
// AbortSignal per request (an aborted request rejects at once with the signal's reason and the
// thread is told, so it can skip or stop the work), every pending request rejected with a
// WorkerStoppedError when the thread crashes or exits, and close() that lets the thread finish
// what it holds for a while before giving up on it.
//
// Written on node:worker_threads directly: piscina is a pool (one model per thread is the point
// here, and it has no per-request progress or cancel messages), comlink proxies objects and
// streams nothing; either would bring more than these ~150 lines replace.
import type { Worker } from 'node:worker_threads';

import { abortable } from './abort.ts';
import { startTsWorker } from './ts-worker.ts';

/** A thread's methods: what each takes, what it answers and (optionally) what it streams while it runs. */
export type RpcMethods = Record<string, { input: unknown; output: unknown; progress?: unknown }>;
export type ProgressOf<Method> = Method extends { progress: infer P } ? P : never;

/** The wire messages, the same for every thread. */
export type RpcToWorker =
  | { type: 'request'; id: number; method: string; input: unknown }
  /** The caller gave up: skip the request if it has not started, stop it if the handler can. */
  | { type: 'cancel'; id: number }
  /** Finish (or, with `cancel`, abort) what is held, run the thread's clean-up, then end. */
  | { type: 'close'; cancel: boolean };

export type RpcFromWorker =
  | { type: 'progress'; id: number; value: unknown }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; name: string; message: string };

/**
 * The thread answered with an error; `remoteName` is the thrown error's name there (structured clone keeps no classes).
 */
export class WorkerRequestError extends Error {
  constructor(
    readonly remoteName: string,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerRequestError';
  }
}

/** The thread ended, or was given up on at close, before answering. */
export class WorkerStoppedError extends Error {
  constructor(
    readonly reason: 'crashed' | 'exited' | 'closed',
    /** What happened, for a host's own message: "crashed (…)", "exited (code 1)", "was closed". */
    readonly what: string,
  ) {
    super(`the worker thread ${what}`);
    this.name = 'WorkerStoppedError';
  }
}

export interface WorkerRpcOptions {
  /** The thread's name (in stack traces, inspectors). */
  name?: string;
  /** Let the process exit while the thread holds no request (the classifiers). Default: the thread keeps it alive. */
  unrefWhenIdle?: boolean;
  /** Called once when the thread has ended or been given up on, after its pending requests were rejected. */
  onStop?(error: WorkerStoppedError): void;
}

export interface RpcRequestOptions<Progress> {
  signal?: AbortSignal | undefined;
  /** Each progress message of the request, in the order the thread sent them, all before it settles. */
  onProgress?: ((value: Progress) => void) | undefined;
}

export interface RpcCloseOptions {
  /** How long the thread gets to finish the requests it holds and end by itself. */
  patienceMs: number;
  /** Abort the requests it holds instead of letting them finish (their handlers' signals fire). */
  cancel?: boolean;
  /**
   * A thread still running after the patience is terminated, or, where it may be inside a native
   * call (terminating a thread inside onnxruntime's run aborts the whole process), unref'd and left
   * to end with the process. Either way its pending requests are rejected.
   */
  overdue: 'terminate' | 'abandon';
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  onProgress?: ((value: unknown) => void) | undefined;
}

export class WorkerRpc<M extends RpcMethods> {
  readonly #worker: Worker;
  readonly #options: WorkerRpcOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  #stopped: WorkerStoppedError | undefined;
  #closing: Promise<void> | undefined;

  /** Starts the thread on a TypeScript entry point that calls serveRpc(). */
  constructor(entry: URL, options: WorkerRpcOptions = {}) {
    this.#options = options;
    this.#worker = startTsWorker(entry, options.name ? { name: options.name } : {});
    this.#worker.on('message', (message: RpcFromWorker) => this.#receive(message));
    this.#worker.on('error', (error) => this.#stop('crashed', `crashed (${error.message})`));
    this.#exited = new Promise((resolve) => {
      this.#worker.on('exit', (code) => {
        this.#stop('exited', `exited (code ${code})`);
        resolve();
      });
    });
    this.#idle();
  }

  /** False once the thread has ended or been given up on: every request then rejects with the error it stopped with. */
  get alive(): boolean {
    return this.#stopped === undefined;
  }

  request<K extends keyof M & string>(
    method: K,
    input: M[K]['input'],
    options: RpcRequestOptions<ProgressOf<M[K]>> = {},
  ): Promise<M[K]['output']> {
    const { signal, onProgress } = options;
    // Checked before anything is posted: an aborted request never reaches the thread.
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#stopped) return Promise.reject(this.#stopped);
    const id = this.#nextId++;
    const answer = new Promise<M[K]['output']>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: resolve as (value: unknown) => void,
        reject,
        onProgress: onProgress as Pending['onProgress'],
      });
    });
    this.#worker.ref();
    this.#post({ type: 'request', id, method, input });
    if (!signal) return answer;
    // The caller stops waiting at once (abortable); the thread is told, and its late answer is dropped.
    const cancel = () => this.#cancel(id);
    signal.addEventListener('abort', cancel, { once: true });
    return abortable(answer, signal).finally(() => signal.removeEventListener('abort', cancel));
  }

  /**
   * Lets the thread finish (or cancel) what it holds and end, for at most `patienceMs`; see RpcCloseOptions.
   * Idempotent.
   */
  close(options: RpcCloseOptions): Promise<void> {
    this.#closing ??= this.#shutDown(options);
    return this.#closing;
  }

  /** Ends the thread now. Only for a thread known to be outside native calls (idle, or after a failed load). */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  async #shutDown({ patienceMs, cancel = false, overdue }: RpcCloseOptions): Promise<void> {
    if (this.#stopped) return;
    this.#post({ type: 'close', cancel });
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), patienceMs);
    });
    const ended = await Promise.race([this.#exited.then(() => true as const), patience]);
    clearTimeout(timer);
    if (ended) return;
    if (overdue === 'terminate') return this.terminate(); // its 'exit' rejects what is left
    this.#worker.unref();
    this.#stop('closed', 'was closed');
  }

  #receive(message: RpcFromWorker): void {
    const pending = this.#pending.get(message.id);
    if (!pending) return; // cancelled or given up on: nobody waits for it
    if (message.type === 'progress') {
      try {
        pending.onProgress?.(message.value);
      } catch (error) {
        // A listener that throws fails its own request, never the process.
        this.#cancel(message.id);
        pending.reject(error);
      }
      return;
    }
    this.#pending.delete(message.id);
    if (message.type === 'result') pending.resolve(message.value);
    else pending.reject(new WorkerRequestError(message.name, message.message));
    this.#idle();
  }

  #cancel(id: number): void {
    if (!this.#pending.delete(id)) return;
    this.#post({ type: 'cancel', id });
    this.#idle();
  }

  #stop(reason: WorkerStoppedError['reason'], what: string): void {
    if (this.#stopped) return;
    // Once close() has begun, whatever ends the thread is the close.
    const error = this.#closing ? new WorkerStoppedError('closed', 'was closed') : new WorkerStoppedError(reason, what);
    this.#stopped = error;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.#options.onStop?.(error);
  }

  /** A thread that holds nothing keeps the process alive only if asked to; while closing it always does. */
  #idle(): void {
    if (this.#options.unrefWhenIdle && this.#pending.size === 0 && !this.#closing) this.#worker.unref();
  }

  #post(message: RpcToWorker): void {
    if (!this.#stopped) this.#worker.postMessage(message);
  }
}
