// Starts a worker thread on a TypeScript entry point (see ts-worker-bootstrap.mjs for why a
// bootstrap is needed). WorkerRpc (worker-rpc.ts) starts the model and classifier threads through it.
import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOTSTRAP = new URL('./ts-worker-bootstrap.mjs', import.meta.url);

export function startTsWorker(entry: URL, options: Omit<WorkerOptions, 'argv'> = {}): Worker {
  return new Worker(BOOTSTRAP, { ...options, argv: [entry.href] });
}
