// The pure parts of the ONNX text classifier, shared by the server thread and the model worker:
// what a model's labels mean, how its logits become scores, and how a long prompt is cut into
// windows. Nothing here touches files, the tokenizer or onnxruntime.
import type { HarmCategory, Severity } from '../../contract/annotations.ts';
import {
  categoryOfLabel,
  type ClassifierScores,
  higherSeverity,
  type SeverityCutPoints,
  severityFromProbability,
} from '../classifier.ts';

/** What a model label means here; `ignore` drops it. */
export type LabelTarget = HarmCategory | 'jailbreak' | 'profanity' | 'ignore';
export const TARGETS: readonly LabelTarget[] = [
  'hate',
  'sexual',
  'violence',
  'self_harm',
  'jailbreak',
  'profanity',
  'ignore',
];

/**
 * Labels of well-known public models whose names categoryOfLabel() cannot read. Labels about
 * general toxicity, insults and harassment name no Azure category and are ignored.
 */
export const LABEL_ALIASES: Readonly<Record<string, LabelTarget>> = {
  // unitary/toxic-bert (Jigsaw toxic comments)
  toxic: 'ignore',
  severe_toxic: 'ignore',
  insult: 'ignore',
  obscene: 'profanity',
  threat: 'violence',
  identity_hate: 'hate',
  // unitary/unbiased-toxic-roberta (Jigsaw unintended bias)
  sexual_explicit: 'sexual',
  identity_attack: 'hate',
  // KoalaAI/Text-Moderation (OpenAI's moderation categories, abbreviated; HR harassment, OK none)
  S: 'sexual',
  S3: 'sexual',
  H: 'hate',
  H2: 'hate',
  V: 'violence',
  V2: 'violence',
  SH: 'self_harm',
  HR: 'ignore',
  OK: 'ignore',
  // prompt-injection classifiers (protectai/deberta-v3-base-prompt-injection-v2, meta-llama/Prompt-Guard-86M)
  INJECTION: 'jailbreak',
  JAILBREAK: 'jailbreak',
};

/** Content tokens shared by consecutive windows, so a phrase on a boundary is seen whole in one of them. */
export const WINDOW_OVERLAP = 16;
export const DEFAULT_MAX_WINDOWS = 8;

/** An error that names the classifier and its folder, as every load error does. */
export function folderError(id: string, folder: string, message: string, cause?: unknown): Error {
  return new Error(
    `text classifier "${id}" (folder ${folder}): ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * config.json's id2label as a list; its keys must be 0 … n-1 (transformers writes them as strings). Throws a message to
 * wrap.
 */
export function id2labelList(config: Record<string, unknown>): string[] {
  const id2label = config.id2label;
  if (typeof id2label !== 'object' || id2label === null || Array.isArray(id2label))
    throw new Error('config.json has no id2label object');
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels: string[] = [];
  for (const [key, label] of entries) {
    const index = Number(key);
    if (
      !Number.isInteger(index) ||
      index < 0 ||
      index >= entries.length ||
      typeof label !== 'string' ||
      labels[index] !== undefined
    ) {
      throw new Error(
        `config.json id2label must map 0 … ${entries.length - 1} to label names (bad entry "${key}": ${JSON.stringify(label)})`,
      );
    }
    labels[index] = label;
  }
  if (labels.length === 0) throw new Error('config.json id2label is empty');
  return labels;
}

/**
 * The meaning of each label: the operator's mapping, else LABEL_ALIASES, else categoryOfLabel(). Throws a message to
 * wrap.
 */
export function labelTargets(
  labels: readonly string[],
  explicit: Readonly<Record<string, LabelTarget>> = {},
): LabelTarget[] {
  const targets = labels.map((label): LabelTarget => {
    const mapped = explicit[label];
    if (mapped !== undefined) {
      if (!TARGETS.includes(mapped))
        throw new Error(`labels maps "${label}" to "${String(mapped)}"; use one of ${TARGETS.join(', ')}`);
      return mapped;
    }
    if (Object.hasOwn(LABEL_ALIASES, label)) return LABEL_ALIASES[label]!;
    return categoryOfLabel(label) ?? 'ignore';
  });
  for (const label of Object.keys(explicit)) {
    if (!labels.includes(label))
      throw new Error(`labels names "${label}", which config.json's id2label does not have (${labels.join(', ')})`);
  }
  if (targets.every((t) => t === 'ignore')) {
    throw new Error(
      `none of the model's labels (${labels.join(', ')}) means a harm category, jailbreak or profanity; map them with labels`,
    );
  }
  return targets;
}

export function widthMessage(modelFile: string, output: string, width: number, labelCount: number): string {
  return `${modelFile} output "${output}" has ${width} labels but config.json's id2label has ${labelCount}`;
}

/** One window's logits → scores: sigmoid per label or softmax over all, then the cut points. */
export function scoresOfLogits(
  logits: readonly number[],
  model: { labels: readonly string[]; targets: readonly LabelTarget[]; activation: 'sigmoid' | 'softmax' },
  cuts: SeverityCutPoints,
): ClassifierScores {
  const probabilities = model.activation === 'sigmoid' ? logits.map(sigmoid) : softmax(logits);
  const severities: Partial<Record<HarmCategory, Severity>> = {};
  const scores: ClassifierScores = { severities };
  probabilities.forEach((p, i) => {
    const target = model.targets[i]!;
    if (target === 'ignore') return;
    if (target === 'jailbreak' || target === 'profanity') scores[target] = scores[target] === true || p >= cuts.medium;
    else severities[target] = higherSeverity(severities[target], severityFromProbability(p, cuts));
  });
  return scores;
}

/**
 * The scores of several windows of one prompt: the highest severity per category, jailbreak and profanity when any
 * window has them.
 */
export function mergeScores(windows: readonly ClassifierScores[]): ClassifierScores {
  const [first, ...rest] = windows;
  const merged: ClassifierScores = { ...first!, severities: { ...first!.severities } };
  for (const scores of rest) {
    for (const [category, severity] of Object.entries(scores.severities) as Array<[HarmCategory, Severity]>) {
      merged.severities[category] = higherSeverity(merged.severities[category], severity);
    }
    for (const flag of ['jailbreak', 'profanity'] as const) {
      if (scores[flag] !== undefined) merged[flag] = merged[flag] === true || scores[flag];
    }
  }
  return merged;
}

/**
 * Where each window starts among `length` content tokens, `size` of them per window. Consecutive
 * windows overlap by WINDOW_OVERLAP (half a window when windows are shorter than twice that), and
 * the last one ends at the last token, so every window is `size` long and a batch needs no padding.
 * At most `maxWindows` windows: the text after them is not scored.
 */
export function windowStarts(length: number, size: number, maxWindows: number): number[] {
  if (length <= size) return [0];
  const stride = size - Math.min(WINDOW_OVERLAP, Math.floor(size / 2));
  const starts: number[] = [];
  for (let start = 0; start + size < length && starts.length < maxWindows; start += stride) starts.push(start);
  if (starts.length < maxWindows) starts.push(length - size);
  return starts;
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
