// The ONNX text classifier's thread: onnxruntime-node runs `session.run` synchronously (a BERT-base
// graph holds its thread ~150 ms at 128 tokens, ~575 ms at 512 on 2 cores), so the tokenizer and
// the session live here, away from the server's event loop. Prompts are scored one after another
// in the order they arrive; a run once started is never interrupted.
import { serveRpc } from '../../runtime/worker-rpc-serve.ts';
import { encodeWindows, loadTextModel, runWindows, type TextModel } from './onnx-text-model.ts';
import type { TextWorkerMethods } from './onnx-text-protocol.ts';

let model: TextModel | undefined;

serveRpc<TextWorkerMethods>(
  {
    async load(plan) {
      model = await loadTextModel(plan);
      return model.contract;
    },
    async classify(text, { signal }) {
      const windows = encodeWindows(model!, text);
      const logits = await runWindows(model!, windows, () => signal.aborted);
      // Stopped between windows: the caller has stopped waiting already.
      if (!logits) throw Object.assign(new Error('the prompt was cancelled'), { name: 'AbortError' });
      return { logits, windows: windows.length };
    },
  },
  { onClose: () => model?.session.release() },
);
