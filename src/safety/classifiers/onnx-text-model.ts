// The model side of the ONNX text classifier, run inside its worker thread (onnx-text-worker.ts):
// builds the tokenizer from tokenizer.json, opens the onnxruntime session, cuts a prompt into
// windows of token ids and runs them. Load errors name the classifier, the folder and the file.
import { join } from 'node:path';

import { Tokenizer } from '@huggingface/tokenizers';
import ort from 'onnxruntime-node';

import { type Fail, firstLine, readJson } from './onnx-text-folder.ts';
import { folderError, widthMessage, windowStarts } from './onnx-text-labels.ts';
import type { TextModelContract, TextModelPlan } from './onnx-text-protocol.ts';

const INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
type InputName = (typeof INPUTS)[number];

export interface TextModel {
  plan: TextModelPlan;
  contract: TextModelContract;
  session: ort.InferenceSession;
  tokenizer: Tokenizer;
  /** The inputs the model declares, with their integer type. */
  inputs: Array<{ name: InputName; type: 'int32' | 'int64' }>;
}

export async function loadTextModel(plan: TextModelPlan): Promise<TextModel> {
  const {
    options: { id, folder, executionProvider, threads },
    modelFile,
  } = plan;
  const fail: Fail = (message, cause) => folderError(id, folder, message, cause);
  const tokenizerJson = await readJson(folder, 'tokenizer.json', fail);
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, plan.tokenizerConfig);
    // Some broken files only fail on first use; find out now rather than on a prompt.
    tokenizer.encode('probe');
  } catch (error) {
    throw fail(`tokenizer.json could not be used: ${firstLine(error)}`, error);
  }

  // As src/engines/deployment-engines.ts does: ORT puts on the CPU whatever CUDA cannot run.
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProvider === 'cuda' ? ['cuda'] : ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(threads !== undefined && threads > 0 ? { intraOpNumThreads: threads } : {}),
  };
  let session: ort.InferenceSession;
  try {
    // By path, so external weights (model.onnx_data) beside it are found.
    session = await ort.InferenceSession.create(join(folder, modelFile), sessionOptions);
  } catch (error) {
    throw fail(`${modelFile} could not be loaded: ${firstLine(error)}`, error);
  }
  try {
    const { inputs, ...contract } = checkContract(session, plan, fail);
    return { plan, contract, session, tokenizer, inputs };
  } catch (error) {
    await session.release();
    throw error;
  }
}

/**
 * The prompt's token ids in windows of maxTokens, each with the tokenizer's special tokens around
 * its slice of the text (the tokenizer has no truncation or striding of its own).
 */
export function encodeWindows(model: TextModel, text: string): number[][] {
  const { tokenizer } = model;
  const {
    maxTokens,
    options: { maxWindows },
  } = model.plan;
  const ids = tokenizer.encode(text).ids;
  if (ids.length <= maxTokens) return [ids];
  const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const prefix = specialPrefixLength(ids, plain);
  const suffix = ids.length - plain.length - prefix;
  const size = maxTokens - prefix - suffix;
  // Special tokens not around the text whole (an odd post-processor): score the first maxTokens as they are.
  if (prefix < 0 || size <= 0) return [ids.slice(0, maxTokens)];
  const [head, tail] = [ids.slice(0, prefix), ids.slice(ids.length - suffix)];
  return windowStarts(plain.length, size, maxWindows).map((start) => [
    ...head,
    ...plain.slice(start, start + size),
    ...tail,
  ]);
}

/**
 * Flattened logits, one row per window: one batched run when the model allows it, else one run per
 * window. `cancelled` is asked between runs; a prompt given up on returns undefined.
 */
export async function runWindows(
  model: TextModel,
  windows: number[][],
  cancelled: () => boolean,
): Promise<number[] | undefined> {
  const batches = model.contract.batched ? [windows] : windows.map((w) => [w]);
  const logits: number[] = [];
  for (const batch of batches) {
    if (cancelled()) return undefined;
    const outputs = await model.session.run(feeds(model, batch));
    const output = outputs[model.contract.output]!;
    const row =
      output.type === 'float16'
        ? Array.from(output.data as Uint16Array, halfToFloat)
        : Array.from(output.data as Float32Array);
    for (const logit of row) logits.push(logit);
  }
  return logits;
}

function feeds(model: TextModel, batch: number[][]): Record<string, ort.Tensor> {
  // Windows of one batch have the same length (windowStarts makes sure), so there is no padding.
  const ids = batch.flat();
  const dims = [batch.length, batch[0]!.length];
  const result: Record<string, ort.Tensor> = {};
  for (const { name, type } of model.inputs) {
    const values = name === 'input_ids' ? ids : ids.map(() => (name === 'attention_mask' ? 1 : 0));
    result[name] = new ort.Tensor(
      type,
      type === 'int64' ? BigInt64Array.from(values, BigInt) : Int32Array.from(values),
      dims,
    );
  }
  return result;
}

/** The inputs this classifier feeds and the logits output, checked against the model's metadata. */
function checkContract(
  session: ort.InferenceSession,
  plan: TextModelPlan,
  fail: Fail,
): TextModelContract & Pick<TextModel, 'inputs'> {
  const { modelFile } = plan;
  const inputs: TextModel['inputs'] = [];
  let batched = true;
  for (const meta of session.inputMetadata) {
    const name = meta.name as InputName;
    if (!INPUTS.includes(name))
      throw fail(
        `${modelFile} needs input "${meta.name}", which this classifier cannot supply (it feeds ${INPUTS.join(', ')})`,
      );
    if (!meta.isTensor || (meta.type !== 'int64' && meta.type !== 'int32'))
      throw fail(`${modelFile} input "${name}" must be an int64 or int32 tensor`);
    inputs.push({ name, type: meta.type });
    // A symbolic ("batch_size") or unknown first dimension takes any batch; a fixed one (a static-shape export) does
    // not.
    const batch = meta.shape[0];
    if (typeof batch === 'number' && batch >= 0) batched = false;
  }
  if (!inputs.some((i) => i.name === 'input_ids'))
    throw fail(`${modelFile} has no input_ids input (inputs: ${session.inputNames.join(', ') || 'none'})`);
  const output = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
  const meta = session.outputMetadata.find((m) => m.name === output);
  if (output === undefined || !meta) throw fail(`${modelFile} has no outputs`);
  if (!meta.isTensor || (meta.type !== 'float32' && meta.type !== 'float16'))
    throw fail(`${modelFile} output "${output}" must be a float tensor`);
  const width = meta.shape.at(-1);
  if (typeof width === 'number' && width !== plan.labels.length)
    throw fail(widthMessage(modelFile, output, width, plan.labels.length));
  return { inputs, output, batched };
}

/**
 * How many special tokens the post-processor put before the text's own tokens; -1 when the text's tokens are not found
 * whole.
 */
function specialPrefixLength(withSpecial: readonly number[], plain: readonly number[]): number {
  for (let start = 0; start + plain.length <= withSpecial.length; start++) {
    if (plain.every((id, i) => withSpecial[start + i] === id)) return start;
  }
  return -1;
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
