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

export type ToTextWorker =
  | { type: 'load'; plan: TextModelPlan }
  | { type: 'classify'; id: number; text: string }
  /** The caller gave up (abort): skip the prompt if it has not started, stop between windows if it has. */
  | { type: 'cancel'; id: number }
  /** Finish the prompts already sent, release the session, then end the thread. */
  | { type: 'close' }
  /** Test hook: the thread exits (code 1) where it would start its next run, as a native crash would. */
  | { type: 'crashOnNextRun' };

export type FromTextWorker =
  | { type: 'ready'; contract: TextModelContract }
  /** The message names the classifier, the folder and the file; the thread then ends. */
  | { type: 'loadFailed'; message: string }
  /** One row of logits per window scored, flattened (float16 outputs already widened). */
  | { type: 'result'; id: number; logits: number[]; windows: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'closed' };
