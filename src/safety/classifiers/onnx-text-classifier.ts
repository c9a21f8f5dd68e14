// A prompt classifier that runs a Hugging Face sequence-classification model exported to ONNX
// (unitary/toxic-bert, KoalaAI/Text-Moderation, a prompt-injection DeBERTa …) from a local folder:
// tokenizer.json through @huggingface/tokenizers, the model through onnxruntime-node.
//
// onnxruntime-node 1.30 runs `session.run` synchronously on the calling thread (inside a
// setImmediate, see its dist/backend.js): a BERT-base-sized graph stalls it ~150 ms at 128 tokens
// and ~575 ms at 512 (2 CPU cores). So the tokenizer and the session live in a worker thread, one
// per classifier (onnx-text-worker.ts), as nsfw/ and engines/diffusion/worker do, through
// src/runtime/worker-rpc.ts; this side sends prompts, turns the logits that come back into scores
// and keeps the thread's life: a thread that dies fails only the prompts it held and the next
// prompt starts a new one.
import { abortable } from '../../runtime/abort.ts';
import { WorkerRequestError, WorkerRpc, WorkerStoppedError } from '../../runtime/worker-rpc.ts';
import {
  type ClassifierScores,
  DEFAULT_CUT_POINTS,
  type PromptClassifier,
  type SeverityCutPoints,
  validCutPoints,
} from '../classifier.ts';
import { inspectFolder } from './onnx-text-folder.ts';
import {
  DEFAULT_MAX_WINDOWS,
  folderError,
  type LabelTarget,
  mergeScores,
  scoresOfLogits,
  widthMessage,
} from './onnx-text-labels.ts';
import type { TextModelContract, TextModelOptions, TextModelPlan, TextWorkerMethods } from './onnx-text-protocol.ts';

export { LABEL_ALIASES, type LabelTarget } from './onnx-text-labels.ts';

export interface OnnxTextClassifierOptions {
  id: string;
  /** Holds model.onnx (or onnx/model.onnx), tokenizer.json, config.json and optionally tokenizer_config.json. */
  folder: string;
  /** Model label → meaning; wins over LABEL_ALIASES and categoryOfLabel(). */
  labels?: Record<string, LabelTarget>;
  cutPoints?: SeverityCutPoints;
  /**
   * Tokens per window, special tokens included. Default: tokenizer_config's model_max_length when
   * ≤ 4096, else 512. A longer prompt is scored in windows of this size that overlap by 16 tokens.
   */
  maxTokens?: number;
  /**
   * The most windows one prompt is scored in (default 8): the text after them is not scored by
   * this classifier, though the rule-based term lists still read the whole prompt. Each window
   * costs a model run's worth of time, which the classifier's timeout has to cover.
   */
  maxWindows?: number;
  executionProvider?: 'cpu' | 'cuda';
  /** ORT intra-op threads; 0 or unset lets ORT choose. */
  threads?: number;
}

const ENTRY = new URL('./onnx-text-worker.ts', import.meta.url);
/**
 * How long close() waits for the thread to finish the prompts it holds. It is never terminated
 * while busy (terminating a thread inside onnxruntime's native run aborts the process); one that
 * takes longer is left to end with the process.
 */
const CLOSE_PATIENCE_MS = 10_000;

type ModelInfo = TextModelPlan & TextModelContract;

interface Answer {
  logits: number[];
  windows: number;
}

/** One worker thread. */
interface Thread {
  rpc: WorkerRpc<TextWorkerMethods>;
  /** Set once the model has loaded. */
  info?: ModelInfo;
}

export class OnnxTextClassifier implements PromptClassifier {
  readonly id: string;
  /** The thread's entry point; tests start a variant of it. */
  protected readonly workerEntry: URL = ENTRY;
  readonly #options: TextModelOptions;
  readonly #cuts: SeverityCutPoints;
  /** The current thread's load; a rejected one is kept, so a failed load stays failed. */
  #ready: Promise<Thread> | undefined;
  #thread: Thread | undefined;
  /** Set when the model proves unusable after load (wrong output width); every call then rejects with it. */
  #failure: Error | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: OnnxTextClassifierOptions) {
    this.id = options.id;
    this.#cuts = options.cutPoints ?? DEFAULT_CUT_POINTS;
    if (!validCutPoints(this.#cuts)) {
      throw new Error(`text classifier "${this.id}": cutPoints must satisfy 0 ≤ low ≤ medium ≤ high ≤ 1`);
    }
    if (options.maxTokens !== undefined && !(Number.isSafeInteger(options.maxTokens) && options.maxTokens >= 2)) {
      throw new Error(`text classifier "${this.id}": maxTokens must be an integer ≥ 2, got ${options.maxTokens}`);
    }
    if (options.maxWindows !== undefined && !(Number.isSafeInteger(options.maxWindows) && options.maxWindows >= 1)) {
      throw new Error(`text classifier "${this.id}": maxWindows must be an integer ≥ 1, got ${options.maxWindows}`);
    }
    const { cutPoints: _cuts, ...rest } = options;
    this.#options = { ...rest, maxWindows: options.maxWindows ?? DEFAULT_MAX_WINDOWS };
  }

  load(): Promise<void> {
    return this.#loaded().then(() => undefined);
  }

  async classify(text: string, signal: AbortSignal): Promise<ClassifierScores> {
    signal.throwIfAborted();
    let thread = await abortable(this.#loaded(), signal);
    // The thread died since it loaded: #loaded() starts the next one.
    if (!thread.rpc.alive) thread = await abortable(this.#loaded(), signal);
    // close() may have begun while this call waited; it lets finish only the prompts already sent.
    if (this.#closed) throw this.#closedError();
    if (this.#failure) throw this.#failure;
    const answer = await this.#send(thread, text, signal);
    return this.#scores(thread.info!, answer);
  }

  close(): Promise<void> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  #loaded(): Promise<Thread> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#ready ??= this.#open();
    return this.#ready;
  }

  async #open(): Promise<Thread> {
    // The small files first, so most broken folders are refused without starting a thread.
    const plan = await inspectFolder(this.#options);
    if (this.#closed) throw this.#closedError();
    return this.#spawn(plan);
  }

  #closedError(): Error {
    return new Error(`text classifier "${this.id}" is closed`);
  }

  async #spawn(plan: TextModelPlan): Promise<Thread> {
    const thread: Thread = {
      rpc: new WorkerRpc<TextWorkerMethods>(this.workerEntry, {
        name: `easel-text-classifier-${this.id}`,
        // The thread keeps the process alive only while it holds prompts.
        unrefWhenIdle: true,
        // A loaded thread that dies is replaced on the next prompt; a failed load stays failed.
        onStop: () => {
          if (thread.info && this.#thread === thread) [this.#thread, this.#ready] = [undefined, undefined];
        },
      }),
    };
    this.#thread = thread;
    try {
      thread.info = { ...plan, ...(await thread.rpc.request('load', plan)) };
      return thread;
    } catch (error) {
      // The thread holds nothing after a failed load, so ending it here is safe.
      void thread.rpc.terminate();
      if (error instanceof WorkerStoppedError)
        throw folderError(this.id, this.#options.folder, `the classifier thread ${error.what} while loading`);
      throw new Error((error as Error).message, { cause: error });
    }
  }

  async #send(thread: Thread, text: string, signal: AbortSignal): Promise<Answer> {
    try {
      // An abort rejects at once with its reason; the thread skips or stops the prompt and its answer is dropped.
      return await thread.rpc.request('classify', text, { signal });
    } catch (error) {
      if (error instanceof WorkerStoppedError) {
        throw this.#closed
          ? this.#closedError()
          : new Error(
              `text classifier "${this.id}": its thread ${error.what} before answering; the next prompt starts a new one`,
            );
      }
      if (error instanceof WorkerRequestError)
        throw new Error(`text classifier "${this.id}": ${error.message}`, { cause: error });
      throw error;
    }
  }

  async #stop(): Promise<void> {
    this.#closed = true;
    const thread = await this.#ready?.catch(() => undefined);
    if (!thread?.rpc.alive) return;
    // The thread answers the prompts it was sent, releases the session, then ends. It is never
    // terminated while busy (see CLOSE_PATIENCE_MS): one still running is left to end with the process.
    await thread.rpc.close({ patienceMs: CLOSE_PATIENCE_MS, overdue: 'abandon' });
  }

  #scores(info: ModelInfo, { logits, windows }: Answer): ClassifierScores {
    const { labels } = info;
    if (logits.length !== windows * labels.length) {
      // Only now known when the exporter left the width symbolic; the folder is unusable, so stay failed.
      this.#failure = folderError(
        this.id,
        this.#options.folder,
        widthMessage(info.modelFile, info.output, logits.length / windows, labels.length),
      );
      throw this.#failure;
    }
    logits.forEach((logit, i) => {
      if (!Number.isFinite(logit))
        throw new Error(`text classifier "${this.id}" gave logit ${logit} for label "${labels[i % labels.length]}"`);
    });
    const perWindow = Array.from({ length: windows }, (_, w) =>
      scoresOfLogits(logits.slice(w * labels.length, (w + 1) * labels.length), info, this.#cuts),
    );
    return mergeScores(perWindow);
  }
}
