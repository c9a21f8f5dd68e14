// The ONNX text classifier's thread: onnxruntime-node runs `session.run` synchronously (a BERT-base
// graph holds its thread ~150 ms at 128 tokens, ~575 ms at 512 on 2 cores), so the tokenizer and
// the session live here, away from the server's event loop. Prompts are scored one after another
// in the order they arrive; a run once started is never interrupted.
import { parentPort } from 'node:worker_threads';
import { encodeWindows, loadTextModel, runWindows, type TextModel } from './onnx-text-model.ts';
import type { FromTextWorker, TextModelPlan, ToTextWorker } from './onnx-text-protocol.ts';

const port = parentPort!;
const post = (message: FromTextWorker) => port.postMessage(message);

let model: TextModel | undefined;
let queue: Promise<void> = Promise.resolve();
/** Prompts received and not yet answered, and those of them the server gave up on. */
const waiting = new Set<number>();
const cancelled = new Set<number>();
let crashOnNextRun = false;

port.on('message', (message: ToTextWorker) => {
  switch (message.type) {
    case 'load':
      queue = queue.then(() => load(message.plan));
      break;
    case 'classify':
      waiting.add(message.id);
      queue = queue.then(() => classify(message.id, message.text));
      break;
    case 'cancel':
      if (waiting.has(message.id)) cancelled.add(message.id);
      break;
    case 'close':
      queue = queue.then(async () => {
        await model?.session.release();
        post({ type: 'closed' });
        port.close();
      });
      break;
    case 'crashOnNextRun':
      crashOnNextRun = true;
      break;
  }
});

async function load(plan: TextModelPlan): Promise<void> {
  try {
    model = await loadTextModel(plan);
    post({ type: 'ready', contract: model.contract });
  } catch (error) {
    post({ type: 'loadFailed', message: (error as Error).message });
    port.close();
  }
}

async function classify(id: number, text: string): Promise<void> {
  try {
    if (cancelled.has(id)) return;
    const windows = encodeWindows(model!, text);
    if (crashOnNextRun) process.exit(1);
    const logits = await runWindows(model!, windows, () => cancelled.has(id));
    if (logits) post({ type: 'result', id, logits, windows: windows.length });
  } catch (error) {
    post({ type: 'failed', id, message: (error as Error).message });
  } finally {
    waiting.delete(id);
    cancelled.delete(id);
  }
}
