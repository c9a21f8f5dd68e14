// The thread's side of worker-rpc.ts: a worker file lists its handlers and calls serveRpc(). The
// requests run one after another, in the order they arrived, since each thread holds one model
// whose runs are synchronous anyway; a cancelled request that has not started is skipped.
import { parentPort } from 'node:worker_threads';

import type { ProgressOf, RpcFromWorker, RpcMethods, RpcToWorker } from './worker-rpc.ts';

export interface RpcContext<Progress> {
  /** Fires when the caller gives up on the request, or the host closes with `cancel`. */
  signal: AbortSignal;
  /** Streams a value to the request's onProgress; `transfer` buffers move instead of being copied. */
  progress(value: Progress, transfer?: readonly ArrayBuffer[]): void;
}

/** An answer whose buffers move to the host instead of being copied. */
export class Transferring<T> {
  constructor(
    readonly value: T,
    readonly transfer: readonly ArrayBuffer[],
  ) {}
}

export type RpcHandlers<M extends RpcMethods> = {
  [K in keyof M]: (
    input: M[K]['input'],
    context: RpcContext<ProgressOf<M[K]>>,
  ) => Promise<M[K]['output'] | Transferring<M[K]['output']>>;
};

export interface ServeOptions {
  /** Runs after the last request, before the thread ends (release sessions). */
  onClose?(): Promise<void> | void;
}

export function serveRpc<M extends RpcMethods>(handlers: RpcHandlers<M>, options: ServeOptions = {}): void {
  const port = parentPort;
  if (!port) throw new Error('serveRpc() runs in a worker thread');
  const post = (message: RpcFromWorker, transfer: readonly ArrayBuffer[] = []) => port.postMessage(message, transfer);
  const running = new Map<number, AbortController>();
  let queue: Promise<void> = Promise.resolve();

  async function handle(id: number, method: string, input: unknown, signal: AbortSignal): Promise<void> {
    try {
      if (signal.aborted)
        throw Object.assign(new Error('the request was cancelled before it started'), { name: 'AbortError' });
      const handler = (handlers as Record<string, RpcHandlers<M>[string] | undefined>)[method];
      if (!handler) throw new Error(`no such method: ${method}`);
      const context: RpcContext<unknown> = {
        signal,
        progress: (value, transfer) => post({ type: 'progress', id, value }, transfer),
      };
      const answer = await handler(input, context as RpcContext<never>);
      if (answer instanceof Transferring) post({ type: 'result', id, value: answer.value }, answer.transfer);
      else post({ type: 'result', id, value: answer });
    } catch (error) {
      const { name, message } = error instanceof Error ? error : new Error(String(error));
      post({ type: 'error', id, name, message });
    }
  }

  port.on('message', (message: RpcToWorker) => {
    switch (message.type) {
      case 'request': {
        const controller = new AbortController();
        running.set(message.id, controller);
        queue = queue
          .then(() => handle(message.id, message.method, message.input, controller.signal))
          .finally(() => running.delete(message.id));
        break;
      }
      case 'cancel':
        running.get(message.id)?.abort();
        break;
      case 'close':
        if (message.cancel) for (const controller of running.values()) controller.abort();
        queue = queue.then(async () => {
          try {
            await options.onClose?.();
          } catch {
            // The thread ends all the same; there is nobody left to tell.
          }
          port.close();
        });
        break;
    }
  });
}
