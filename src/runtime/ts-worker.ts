// Starts a worker thread on a TypeScript entry point. Run from src/ (tests, development) the
// worker goes through ts-worker-bootstrap.mjs, which registers tsx; run from the compiled dist/
// (what `npm start` runs), the entry's compiled .js file is started directly. WorkerRpc (worker-rpc.ts) starts the
// model and
// classifier threads through it.
import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOTSTRAP = new URL('./ts-worker-bootstrap.mjs', import.meta.url);
// tsc rewrites import specifiers, not the `new URL('./worker.ts', …)` strings callers pass.
const COMPILED = import.meta.url.endsWith('.js');

export function startTsWorker(entry: URL, options: Omit<WorkerOptions, 'argv'> = {}): Worker {
  if (COMPILED) return new Worker(new URL(entry.href.replace(/\.ts$/, '.js')), options);
  return new Worker(BOOTSTRAP, { ...options, argv: [entry.href] });
}
