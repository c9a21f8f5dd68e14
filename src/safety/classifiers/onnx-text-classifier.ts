// A prompt classifier that runs a Hugging Face sequence-classification model exported to ONNX
// (unitary/toxic-bert, KoalaAI/Text-Moderation, a prompt-injection DeBERTa …) from a local folder:
// tokenizer.json through @huggingface/tokenizers, the model through onnxruntime-node.
//
// onnxruntime-node 1.30 runs `session.run` synchronously on the calling thread (inside a
// setImmediate, see its dist/backend.js): a BERT-base-sized graph stalls it ~150 ms at 128 tokens
// and ~575 ms at 512 (2 CPU cores). So the tokenizer and the session live in a worker thread, one
// per classifier (onnx-text-worker.ts), as nsfw/ and engines/diffusion/worker do; this side sends
// prompts, turns the logits that come back into scores and keeps the thread's life: a thread that
// dies fails only the prompts it held and the next prompt starts a new one.
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../runtime/ts-worker.ts';
import { DEFAULT_CUT_POINTS, validCutPoints, type ClassifierScores, type PromptClassifier, type SeverityCutPoints } from '../classifier.ts';
import { DEFAULT_MAX_WINDOWS, folderError, mergeScores, scoresOfLogits, widthMessage, type LabelTarget } from './onnx-text-labels.ts';
import { inspectFolder } from './onnx-text-folder.ts';
import type { FromTextWorker, TextModelContract, TextModelOptions, TextModelPlan, ToTextWorker } from './onnx-text-protocol.ts';

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

interface Pending {
  resolve(answer: Answer): void;
  reject(error: Error): void;
  /** Removes the abort listener. */
  done(): void;
}

/** One worker thread and the prompts sent to it. */
interface Thread {
  worker: Worker;
  alive: boolean;
  /** Set once the model has loaded. */
  info?: ModelInfo;
  pending: Map<number, Pending>;
}

export class OnnxTextClassifier implements PromptClassifier {
  readonly id: string;
  readonly #options: TextModelOptions;
  readonly #cuts: SeverityCutPoints;
  /** The current thread's load; a rejected one is kept, so a failed load stays failed. */
  #ready: Promise<Thread> | undefined;
  #thread: Thread | undefined;
  /** Set when the model proves unusable after load (wrong output width); every call then rejects with it. */
  #failure: Error | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #nextId = 1;

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
    if (!thread.alive) thread = await abortable(this.#loaded(), signal);
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

  /** Test hook: the thread exits (code 1) where it would start its next run, as a native crash in onnxruntime would. */
  async crashWorkerOnNextRun(): Promise<void> {
    const thread = await this.#loaded();
    this.#post(thread, { type: 'crashOnNextRun' });
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

  #spawn(plan: TextModelPlan): Promise<Thread> {
    const worker = startTsWorker(ENTRY, { name: `easel-text-classifier-${this.id}` });
    const thread: Thread = { worker, alive: true, pending: new Map() };
    this.#thread = thread;
    const ready = new Promise<Thread>((resolve, reject) => {
      worker.on('message', (message: FromTextWorker) => {
        if (message.type === 'ready') {
          thread.info = { ...plan, ...message.contract };
          this.#idle(thread);
          resolve(thread);
        } else if (message.type === 'loadFailed') {
          // The thread ends by itself after saying so.
          reject(new Error(message.message));
        } else if (message.type === 'result') {
          this.#settle(thread, message.id, undefined, message);
        } else if (message.type === 'failed') {
          this.#settle(thread, message.id, new Error(`text classifier "${this.id}": ${message.message}`));
        }
      });
      const died = (how: string) => {
        if (!thread.alive) return;
        thread.alive = false;
        if (!thread.info) {
          reject(folderError(this.id, this.#options.folder, `the classifier thread ${how} while loading`));
          return;
        }
        // A loaded thread that dies is replaced on the next prompt.
        if (this.#thread === thread) [this.#thread, this.#ready] = [undefined, undefined];
        const error = this.#closed
          ? this.#closedError()
          : new Error(`text classifier "${this.id}": its thread ${how} before answering; the next prompt starts a new one`);
        for (const id of [...thread.pending.keys()]) this.#settle(thread, id, error);
      };
      worker.on('error', (error) => died(`crashed (${error.message})`));
      worker.on('exit', (code) => died(`exited (code ${code})`));
    });
    this.#post(thread, { type: 'load', plan });
    return ready;
  }

  #send(thread: Thread, text: string, signal: AbortSignal): Promise<Answer> {
    const id = this.#nextId++;
    return new Promise<Answer>((resolve, reject) => {
      if (!thread.alive) return reject(new Error(`text classifier "${this.id}": its thread ended before the prompt could be sent`));
      // The thread may finish the run; its answer is then dropped.
      const onAbort = () => {
        if (!thread.pending.has(id)) return;
        this.#post(thread, { type: 'cancel', id });
        this.#settle(thread, id, signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      thread.pending.set(id, { resolve, reject, done: () => signal.removeEventListener('abort', onAbort) });
      // The thread keeps the process alive only while it holds prompts.
      thread.worker.ref();
      this.#post(thread, { type: 'classify', id, text });
    });
  }

  #settle(thread: Thread, id: number, error: Error | undefined, answer?: Answer): void {
    const pending = thread.pending.get(id);
    if (!pending) return;
    thread.pending.delete(id);
    pending.done();
    if (error) pending.reject(error);
    else pending.resolve({ logits: answer!.logits, windows: answer!.windows });
    this.#idle(thread);
  }

  #idle(thread: Thread): void {
    if (thread.pending.size === 0 && !this.#closing) thread.worker.unref();
  }

  #post(thread: Thread, message: ToTextWorker): void {
    thread.worker.postMessage(message);
  }

  async #stop(): Promise<void> {
    this.#closed = true;
    const thread = await this.#ready?.catch(() => undefined);
    if (!thread?.alive) return;
    const exited = new Promise<void>((resolve) => thread.worker.once('exit', () => resolve()));
    // The thread answers the prompts it was sent, releases the session, then ends.
    this.#post(thread, { type: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        thread.worker.unref();
        for (const id of [...thread.pending.keys()]) this.#settle(thread, id, this.#closedError());
        resolve();
      }, CLOSE_PATIENCE_MS);
    });
    await Promise.race([exited, patience]);
    clearTimeout(timer);
  }

  #scores(info: ModelInfo, { logits, windows }: Answer): ClassifierScores {
    const { labels } = info;
    if (logits.length !== windows * labels.length) {
      // Only now known when the exporter left the width symbolic; the folder is unusable, so stay failed.
      this.#failure = folderError(this.id, this.#options.folder, widthMessage(info.modelFile, info.output, logits.length / windows, labels.length));
      throw this.#failure;
    }
    logits.forEach((logit, i) => {
      if (!Number.isFinite(logit)) throw new Error(`text classifier "${this.id}" gave logit ${logit} for label "${labels[i % labels.length]}"`);
    });
    const perWindow = Array.from({ length: windows }, (_, w) => scoresOfLogits(logits.slice(w * labels.length, (w + 1) * labels.length), info, this.#cuts));
    return mergeScores(perWindow);
  }
}

/** Settles as `promise` does, or rejects with the signal's reason as soon as it fires. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
