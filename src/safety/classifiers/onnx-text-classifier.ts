// A prompt classifier that runs a Hugging Face sequence-classification model exported to ONNX
// (unitary/toxic-bert, KoalaAI/Text-Moderation, a prompt-injection DeBERTa …) from a local folder:
// tokenizer.json through @huggingface/tokenizers, the model through onnxruntime-node.
//
// onnxruntime-node 1.30 runs `session.run` synchronously on the main thread (inside a
// setImmediate, see its dist/backend.js): the event loop stalls for the whole run, and runs on one
// session are serialised by that alone. A BERT-base-sized graph stalled it 150 ms at 128 tokens and
// 570 ms at 512 (2 CPU cores); large models belong in a worker thread as nsfw/ does. An abort
// cannot interrupt a run either: it rejects once the event loop is free and the result is dropped.
import ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HarmCategory, Severity } from '../../contract/annotations.ts';
import {
  categoryOfLabel,
  DEFAULT_CUT_POINTS,
  higherSeverity,
  severityFromProbability,
  type ClassifierScores,
  type PromptClassifier,
  type SeverityCutPoints,
} from '../classifier.ts';

/** What a model label means here; `ignore` drops it. */
export type LabelTarget = HarmCategory | 'jailbreak' | 'profanity' | 'ignore';
const TARGETS: readonly LabelTarget[] = ['hate', 'sexual', 'violence', 'self_harm', 'jailbreak', 'profanity', 'ignore'];

export interface OnnxTextClassifierOptions {
  id: string;
  /** Holds model.onnx (or onnx/model.onnx), tokenizer.json, config.json and optionally tokenizer_config.json. */
  folder: string;
  /** Model label → meaning; wins over LABEL_ALIASES and categoryOfLabel(). */
  labels?: Record<string, LabelTarget>;
  cutPoints?: SeverityCutPoints;
  /** Default: tokenizer_config's model_max_length when ≤ 4096, else 512. Special tokens included. */
  maxTokens?: number;
  executionProvider?: 'cpu' | 'cuda';
  /** ORT intra-op threads; 0 or unset lets ORT choose. */
  threads?: number;
}

/**
 * Labels of well-known public models whose names categoryOfLabel() cannot read. Labels about
 * general toxicity, insults and harassment name no Azure category and are ignored.
 */
export const LABEL_ALIASES: Readonly<Record<string, LabelTarget>> = {
  // unitary/toxic-bert (Jigsaw toxic comments)
  toxic: 'ignore', severe_toxic: 'ignore', insult: 'ignore', obscene: 'profanity', threat: 'violence', identity_hate: 'hate',
  // unitary/unbiased-toxic-roberta (Jigsaw unintended bias)
  sexual_explicit: 'sexual', identity_attack: 'hate',
  // KoalaAI/Text-Moderation (OpenAI's moderation categories, abbreviated; HR harassment, OK none)
  S: 'sexual', S3: 'sexual', H: 'hate', H2: 'hate', V: 'violence', V2: 'violence', SH: 'self_harm', HR: 'ignore', OK: 'ignore',
  // prompt-injection classifiers (protectai/deberta-v3-base-prompt-injection-v2, meta-llama/Prompt-Guard-86M)
  INJECTION: 'jailbreak', JAILBREAK: 'jailbreak',
};

/** model_max_length above this is a "no limit" sentinel (transformers writes 1e30), not a real size. */
const MAX_PLAUSIBLE_LENGTH = 4096;
const FALLBACK_MAX_TOKENS = 512;
const INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
type InputName = (typeof INPUTS)[number];

interface Loaded {
  session: ort.InferenceSession;
  /** model.onnx or onnx/model.onnx, relative to the folder. */
  modelFile: string;
  tokenizer: Tokenizer;
  maxTokens: number;
  labels: string[];
  /** Per label index; `ignore` for labels that mean nothing here. */
  targets: LabelTarget[];
  activation: 'sigmoid' | 'softmax';
  /** The inputs the model declares, with their integer type. */
  inputs: Array<{ name: InputName; type: 'int32' | 'int64' }>;
  output: string;
}

export class OnnxTextClassifier implements PromptClassifier {
  readonly id: string;
  readonly #options: OnnxTextClassifierOptions;
  readonly #cuts: SeverityCutPoints;
  #loading: Promise<Loaded> | undefined;
  /** Set when the model proves unusable after load (wrong output width); every call then rejects with it. */
  #failure: Error | undefined;
  #closed = false;
  readonly #running = new Set<Promise<unknown>>();

  constructor(options: OnnxTextClassifierOptions) {
    this.id = options.id;
    this.#options = options;
    this.#cuts = options.cutPoints ?? DEFAULT_CUT_POINTS;
    const { low, medium, high } = this.#cuts;
    if (!(low >= 0 && low <= medium && medium <= high && high <= 1)) {
      throw new Error(`text classifier "${this.id}": cutPoints must satisfy 0 ≤ low ≤ medium ≤ high ≤ 1`);
    }
    if (options.maxTokens !== undefined && !(Number.isSafeInteger(options.maxTokens) && options.maxTokens >= 2)) {
      throw new Error(`text classifier "${this.id}": maxTokens must be an integer ≥ 2, got ${options.maxTokens}`);
    }
  }

  load(): Promise<void> {
    return this.#loaded().then(() => undefined);
  }

  async classify(text: string, signal: AbortSignal): Promise<ClassifierScores> {
    signal.throwIfAborted();
    const loaded = await abortable(this.#loaded(), signal);
    const feeds = this.#feeds(loaded, text);
    // close() may have begun while this call waited; it waits only for runs already started.
    if (this.#closed) throw this.#closedError();
    const run = loaded.session.run(feeds);
    this.#running.add(run);
    void run.then(
      () => this.#running.delete(run),
      () => this.#running.delete(run),
    );
    const outputs = await abortable(run, signal);
    return this.#scores(loaded, outputs[loaded.output]!);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const loading = this.#loading;
    if (!loading) return;
    const loaded = await loading.catch(() => undefined);
    // Runs still queued would meet a released session; let them finish first.
    await Promise.allSettled([...this.#running]);
    await loaded?.session.release();
  }

  #loaded(): Promise<Loaded> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#loading ??= this.#open();
    return this.#loading;
  }

  #closedError(): Error {
    return new Error(`text classifier "${this.id}" is closed`);
  }

  #error(message: string, cause?: unknown): Error {
    return new Error(`text classifier "${this.id}" (folder ${this.#options.folder}): ${message}`, cause === undefined ? undefined : { cause });
  }

  async #open(): Promise<Loaded> {
    const { folder } = this.#options;
    const info = await stat(folder).catch(() => undefined);
    if (!info) throw this.#error('the folder does not exist');
    if (!info.isDirectory()) throw this.#error('is not a folder');
    const modelFile = await this.#modelFile();
    const config = await this.#readJson('config.json');
    const tokenizerJson = await this.#readJson('tokenizer.json');
    const tokenizerConfig = await this.#readJson('tokenizer_config.json', {});

    const labels = this.#id2label(config);
    const targets = labels.map((label) => this.#targetOf(label));
    for (const label of Object.keys(this.#options.labels ?? {})) {
      if (!labels.includes(label)) throw this.#error(`labels names "${label}", which config.json's id2label does not have (${labels.join(', ')})`);
    }
    if (targets.every((t) => t === 'ignore')) {
      throw this.#error(`none of the model's labels (${labels.join(', ')}) means a harm category, jailbreak or profanity; map them with labels`);
    }

    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
      // Some broken files only fail on first use; find out now rather than on a prompt.
      tokenizer.encode('probe');
    } catch (error) {
      throw this.#error(`tokenizer.json could not be used: ${firstLine(error)}`, error);
    }
    const maxLength = tokenizerConfig.model_max_length;
    const maxTokens =
      this.#options.maxTokens ??
      (typeof maxLength === 'number' && maxLength >= 2 && maxLength <= MAX_PLAUSIBLE_LENGTH ? maxLength : FALLBACK_MAX_TOKENS);

    const session = await this.#session(modelFile);
    try {
      const { inputs, output } = this.#contract(session, modelFile, labels.length);
      const activation = config.problem_type === 'multi_label_classification' ? 'sigmoid' : 'softmax';
      return { session, modelFile, tokenizer, maxTokens, labels, targets, activation, inputs, output };
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** The parsed JSON object; `fallback` when given and the file is absent. */
  async #readJson(name: string, fallback?: Record<string, unknown>): Promise<Record<string, unknown>> {
    let text: string;
    try {
      text = await readFile(join(this.#options.folder, name), 'utf8');
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (missing && fallback) return fallback;
      throw this.#error(missing ? `${name} is missing` : `${name} could not be read: ${firstLine(error)}`, error);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw this.#error(`${name} is not valid JSON: ${firstLine(error)}`, error);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.#error(`${name} is not a JSON object`);
    return value as Record<string, unknown>;
  }

  /** id2label as a list; its keys must be 0 … n-1 (transformers writes them as strings). */
  #id2label(config: Record<string, unknown>): string[] {
    const id2label = config.id2label;
    if (typeof id2label !== 'object' || id2label === null || Array.isArray(id2label)) throw this.#error('config.json has no id2label object');
    const entries = Object.entries(id2label as Record<string, unknown>);
    const labels: string[] = [];
    for (const [key, label] of entries) {
      const index = Number(key);
      if (!Number.isInteger(index) || index < 0 || index >= entries.length || typeof label !== 'string' || labels[index] !== undefined) {
        throw this.#error(`config.json id2label must map 0 … ${entries.length - 1} to label names (bad entry "${key}": ${JSON.stringify(label)})`);
      }
      labels[index] = label;
    }
    if (labels.length === 0) throw this.#error('config.json id2label is empty');
    return labels;
  }

  #targetOf(label: string): LabelTarget {
    const explicit = this.#options.labels?.[label];
    if (explicit !== undefined) {
      if (!TARGETS.includes(explicit)) throw this.#error(`labels maps "${label}" to "${String(explicit)}"; use one of ${TARGETS.join(', ')}`);
      return explicit;
    }
    if (Object.hasOwn(LABEL_ALIASES, label)) return LABEL_ALIASES[label]!;
    return categoryOfLabel(label) ?? 'ignore';
  }

  /** model.onnx, or onnx/model.onnx as transformers.js and optimum lay folders out. */
  async #modelFile(): Promise<string> {
    for (const name of ['model.onnx', join('onnx', 'model.onnx')]) {
      if ((await stat(join(this.#options.folder, name)).catch(() => undefined))?.isFile()) return name;
    }
    throw this.#error('model.onnx is missing (looked for model.onnx and onnx/model.onnx)');
  }

  async #session(modelFile: string): Promise<ort.InferenceSession> {
    const { folder, executionProvider, threads } = this.#options;
    // As src/engines/deployment-engines.ts does: ORT puts on the CPU whatever CUDA cannot run.
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: executionProvider === 'cuda' ? ['cuda'] : ['cpu'],
      ...(threads !== undefined && threads > 0 ? { intraOpNumThreads: threads } : {}),
    };
    try {
      // By path, so external weights (model.onnx_data) beside it are found.
      return await ort.InferenceSession.create(join(folder, modelFile), options);
    } catch (error) {
      throw this.#error(`${modelFile} could not be loaded: ${firstLine(error)}`, error);
    }
  }

  /** The inputs this classifier feeds and the logits output, checked against the model's metadata. */
  #contract(session: ort.InferenceSession, modelFile: string, labelCount: number): Pick<Loaded, 'inputs' | 'output'> {
    const inputs: Loaded['inputs'] = [];
    for (const meta of session.inputMetadata) {
      const name = meta.name as InputName;
      if (!INPUTS.includes(name)) {
        throw this.#error(`${modelFile} needs input "${meta.name}", which this classifier cannot supply (it feeds ${INPUTS.join(', ')})`);
      }
      if (!meta.isTensor || (meta.type !== 'int64' && meta.type !== 'int32')) {
        throw this.#error(`${modelFile} input "${name}" must be an int64 or int32 tensor`);
      }
      inputs.push({ name, type: meta.type });
    }
    if (!inputs.some((i) => i.name === 'input_ids')) {
      throw this.#error(`${modelFile} has no input_ids input (inputs: ${session.inputNames.join(', ') || 'none'})`);
    }
    const output = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
    const meta = session.outputMetadata.find((m) => m.name === output);
    if (output === undefined || !meta) throw this.#error(`${modelFile} has no outputs`);
    if (!meta.isTensor || (meta.type !== 'float32' && meta.type !== 'float16')) throw this.#error(`${modelFile} output "${output}" must be a float tensor`);
    const width = meta.shape.at(-1);
    if (typeof width === 'number' && width !== labelCount) throw this.#widthError(modelFile, output, width, labelCount);
    return { inputs, output };
  }

  #widthError(modelFile: string, output: string, width: number, labelCount: number): Error {
    return this.#error(`${modelFile} output "${output}" has ${width} labels but config.json's id2label has ${labelCount}`);
  }

  /** Token ids with the tokenizer's special tokens, cut to maxTokens by dropping text from the end (HF's truncation). */
  #feeds(loaded: Loaded, text: string): Record<string, ort.Tensor> {
    const { tokenizer, maxTokens } = loaded;
    let ids = tokenizer.encode(text).ids;
    if (ids.length > maxTokens) {
      // The tokenizer has no truncation: cut the text's tokens and keep the special tokens around them.
      const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
      const prefix = specialPrefixLength(ids, plain);
      const suffix = ids.length - plain.length - prefix;
      const keep = maxTokens - prefix - suffix;
      ids = prefix < 0 || keep <= 0 ? ids.slice(0, maxTokens) : [...ids.slice(0, prefix), ...plain.slice(0, keep), ...ids.slice(ids.length - suffix)];
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const { name, type } of loaded.inputs) {
      const values = name === 'input_ids' ? ids : name === 'attention_mask' ? ids.map(() => 1) : ids.map(() => 0);
      const data = type === 'int64' ? BigInt64Array.from(values, BigInt) : Int32Array.from(values);
      feeds[name] = new ort.Tensor(type, data, [1, ids.length]);
    }
    return feeds;
  }

  #scores(loaded: Loaded, output: ort.Tensor): ClassifierScores {
    const { labels, targets } = loaded;
    if (output.data.length !== labels.length) {
      // Only now known when the exporter left the width symbolic; the folder is unusable, so stay failed.
      this.#failure = this.#widthError(loaded.modelFile, loaded.output, output.data.length, labels.length);
      throw this.#failure;
    }
    const logits = output.type === 'float16' ? Array.from(output.data as Uint16Array, halfToFloat) : Array.from(output.data as Float32Array);
    logits.forEach((logit, i) => {
      if (!Number.isFinite(logit)) throw new Error(`text classifier "${this.id}" gave logit ${logit} for label "${labels[i]}"`);
    });
    const probabilities = loaded.activation === 'sigmoid' ? logits.map(sigmoid) : softmax(logits);

    const severities: Partial<Record<HarmCategory, Severity>> = {};
    const scores: ClassifierScores = { severities };
    probabilities.forEach((p, i) => {
      const target = targets[i]!;
      if (target === 'ignore') return;
      if (target === 'jailbreak' || target === 'profanity') scores[target] = scores[target] === true || p >= this.#cuts.medium;
      else severities[target] = higherSeverity(severities[target], severityFromProbability(p, this.#cuts));
    });
    return scores;
  }
}

/** How many special tokens the post-processor put before the text's own tokens; -1 when the text's tokens are not found whole. */
function specialPrefixLength(withSpecial: readonly number[], plain: readonly number[]): number {
  for (let start = 0; start + plain.length <= withSpecial.length; start++) {
    if (plain.every((id, i) => withSpecial[start + i] === id)) return start;
  }
  return -1;
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

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** IEEE half bits → number (fp16 exports give float16 logits as a Uint16Array). */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function firstLine(reason: unknown): string {
  return String(reason instanceof Error ? reason.message : reason).split('\n')[0]!;
}
