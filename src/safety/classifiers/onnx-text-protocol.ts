// Messages between the server's event loop and an ONNX text classifier's worker thread. All plain
// structured-clone data: prompts go in, raw logits come back, and the server turns them into scores.
import type { LabelTarget } from './onnx-text-labels.ts';

/** What the worker needs to load the model folder (the classifier's options, less the cut points). */
export interface TextModelOptions {
  id: string;
  folder: string;
  labels?: Record<string, LabelTarget>;
  maxTokens?: number;
  maxWindows: number;
  executionProvider?: 'cpu' | 'cuda';
  threads?: number;
}

/** The options and what the folder's small files said (onnx-text-folder.ts), for the thread to load the rest. */
export interface TextModelPlan {
  options: TextModelOptions;
  /** model.onnx or onnx/model.onnx, relative to the folder. */
  modelFile: string;
  labels: string[];
  /** Per label index; `ignore` for labels that mean nothing here. */
  targets: LabelTarget[];
  activation: 'sigmoid' | 'softmax';
  /** Tokens per window, special tokens included. */
  maxTokens: number;
  /** tokenizer_config.json, or {} where there is none. */
  tokenizerConfig: Record<string, unknown>;
}

/** What the thread found in model.onnx. */
export interface TextModelContract {
  /** The logits output's name. */
  output: string;
  /** Whether windows go through the model in one batch (its inputs have a dynamic batch dimension). */
  batched: boolean;
}

/** The classifier thread's methods (src/runtime/worker-rpc.ts carries them). */
export type TextWorkerMethods = {
  /** Opens the tokenizer and the session; a failure's message names the classifier, the folder and the file. */
  load: { input: TextModelPlan; output: TextModelContract };
  /**
   * One row of logits per window scored, flattened (float16 outputs already widened). A prompt
   * the caller gave up on is skipped if it has not started, and stopped between windows if it has.
   */
  classify: { input: string; output: { logits: number[]; windows: number } };
};
