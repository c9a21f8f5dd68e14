// Reads what a Hugging Face model folder says about itself (config.json, tokenizer_config.json)
// and checks its files are there, before a thread is started for the model: these files are small,
// and most broken folders are refused here at no thread's cost. tokenizer.json (up to megabytes)
// and model.onnx are read by the model's thread (onnx-text-model.ts).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { folderError, id2labelList, labelTargets } from './onnx-text-labels.ts';
import type { TextModelOptions, TextModelPlan } from './onnx-text-protocol.ts';

/** model_max_length above this is a "no limit" sentinel (transformers writes 1e30), not a real size. */
const MAX_PLAUSIBLE_LENGTH = 4096;
const FALLBACK_MAX_TOKENS = 512;

export type Fail = (message: string, cause?: unknown) => Error;

export async function inspectFolder(options: TextModelOptions): Promise<TextModelPlan> {
  const { id, folder } = options;
  const fail: Fail = (message, cause) => folderError(id, folder, message, cause);
  const info = await stat(folder).catch(() => undefined);
  if (!info) throw fail('the folder does not exist');
  if (!info.isDirectory()) throw fail('is not a folder');
  const modelFile = await findModelFile(folder, fail);
  const config = await readJson(folder, 'config.json', fail);
  if (!(await stat(join(folder, 'tokenizer.json')).catch(() => undefined))) throw fail('tokenizer.json is missing');
  const tokenizerConfig = await readJson(folder, 'tokenizer_config.json', fail, {});

  let labels: string[], targets: TextModelPlan['targets'];
  try {
    labels = id2labelList(config);
    targets = labelTargets(labels, options.labels);
  } catch (error) {
    throw fail((error as Error).message);
  }
  const maxLength = tokenizerConfig.model_max_length;
  const maxTokens =
    options.maxTokens ??
    (typeof maxLength === 'number' && maxLength >= 2 && maxLength <= MAX_PLAUSIBLE_LENGTH
      ? maxLength
      : FALLBACK_MAX_TOKENS);
  const activation = config.problem_type === 'multi_label_classification' ? 'sigmoid' : 'softmax';
  return { options, modelFile, labels, targets, activation, maxTokens, tokenizerConfig };
}

/** The parsed JSON object; `fallback` when given and the file is absent. */
export async function readJson(
  folder: string,
  name: string,
  fail: Fail,
  fallback?: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(join(folder, name), 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    if (missing && fallback) return fallback;
    throw fail(missing ? `${name} is missing` : `${name} could not be read: ${firstLine(error)}`, error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw fail(`${name} is not valid JSON: ${firstLine(error)}`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(`${name} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** model.onnx, or onnx/model.onnx as transformers.js and optimum lay folders out. */
async function findModelFile(folder: string, fail: Fail): Promise<string> {
  for (const name of ['model.onnx', join('onnx', 'model.onnx')]) {
    if ((await stat(join(folder, name)).catch(() => undefined))?.isFile()) return name;
  }
  throw fail('model.onnx is missing (looked for model.onnx and onnx/model.onnx)');
}

export function firstLine(reason: unknown): string {
  return String(reason instanceof Error ? reason.message : reason).split('\n')[0]!;
}
