// The safety part of the configuration: thresholds, blocklists, prompt classifiers and the image
// classifier, with their validation. Types here are what src/app.ts builds the filters from.
import { resolve } from 'node:path';
import { HARM_CATEGORIES, type HarmCategory } from '../contract/annotations.ts';
import type { BlocklistDefinition } from '../safety/blocklists.ts';
import type { ClassifierFailurePolicy, SeverityCutPoints } from '../safety/classifier.ts';
import { CATEGORY_LEVELS, THRESHOLDS, type DeploymentSafety, type ThresholdSetting } from '../safety/policy.ts';

interface ClassifierCommon {
  /** The name deployments list it by and that annotation errors and logs show. */
  id: string;
  /** Longest a prompt waits for it; past this the failure policy applies. Default 5000 ms. */
  timeoutMs: number;
  /** A failure or timeout "block"s the prompt (default) or "allow"s it unscored; the annotation says so either way. */
  onFailure: ClassifierFailurePolicy;
  /** Probability → severity cut points (probability classifiers only); default low 0.3, medium 0.5, high 0.8. */
  cutPoints?: SeverityCutPoints;
}

/** A sequence-classification model in ONNX (model.onnx, tokenizer.json, config.json) in a local folder. */
export interface OnnxClassifierConfig extends ClassifierCommon {
  kind: 'onnx';
  /** Absolute path (config: absolute, or a name under models.dir). */
  folder: string;
  /** The model's label → category ("hate", "sexual", "violence", "self_harm", "jailbreak", "profanity", "ignore"). */
  labels?: Record<string, string>;
  maxTokens?: number;
}

/** An external moderation endpoint: Azure AI Content Safety text:analyze, or an OpenAI-style /moderations. */
export interface HttpClassifierConfig extends ClassifierCommon {
  kind: 'azure-content-safety' | 'openai-moderation';
  url: string;
  /** The key itself; prefer keyEnv so it stays out of the file. */
  key?: string;
  /** The environment variable that holds the key. */
  keyEnv?: string;
  /** openai-moderation: the model to ask for ("omni-moderation-latest"). */
  model?: string;
}

export type ClassifierConfig = OnnxClassifierConfig | HttpClassifierConfig;
export const CLASSIFIER_KINDS = ['onnx', 'azure-content-safety', 'openai-moderation'] as const;

export interface SafetyConfig {
  /** One level for every category or one per category: "low" | "medium" | "high" (| "off" per category). */
  threshold: ThresholdSetting;
  /** Refuse prompts with profanity (Azure's default only reports it). */
  blockProfanity: boolean;
  blocklists: BlocklistDefinition[];
  /** Prompt classifiers that run beside the term lists, on every deployment unless it names its own. */
  classifiers: ClassifierConfig[];
  /** The image filter: "nsfwjs" (the bundled pretrained classifier) or "none" (every image passes, reading safe). */
  imageClassifier: 'nsfwjs' | 'none';
  /** When the image classifier throws or times out: "block" the image (default) or "allow" it; either way the annotation carries `error`. */
  imageClassifierFailure: ClassifierFailurePolicy;
  /** Run the image classifier on the placeholder engine's pictures too (default: on real engines only). */
  classifyPlaceholderImages: boolean;
}

export const SAFETY_DEFAULTS: SafetyConfig = {
  threshold: 'medium',
  blockProfanity: false,
  blocklists: [],
  classifiers: [],
  imageClassifier: 'nsfwjs',
  imageClassifierFailure: 'block',
  classifyPlaceholderImages: false,
};

/** Environment variables of the safety settings, applied over the file's. */
export function safetyFromEnv(safety: SafetyConfig, env: NodeJS.ProcessEnv, bool: (name: string, raw: string) => boolean): SafetyConfig {
  // A file's malformed `blocklists` is left for validateSafety to report.
  const out = { ...safety, blocklists: Array.isArray(safety.blocklists) ? [...safety.blocklists] : safety.blocklists };
  if (env.EASEL_SAFETY_THRESHOLD) out.threshold = env.EASEL_SAFETY_THRESHOLD as ThresholdSetting;
  if (env.EASEL_BLOCK_PROFANITY) out.blockProfanity = bool('EASEL_BLOCK_PROFANITY', env.EASEL_BLOCK_PROFANITY);
  if (env.EASEL_IMAGE_CLASSIFIER) out.imageClassifier = env.EASEL_IMAGE_CLASSIFIER as SafetyConfig['imageClassifier'];
  if (env.EASEL_IMAGE_CLASSIFIER_FAILURE) out.imageClassifierFailure = env.EASEL_IMAGE_CLASSIFIER_FAILURE as ClassifierFailurePolicy;
  if (env.EASEL_CLASSIFY_PLACEHOLDER_IMAGES) out.classifyPlaceholderImages = bool('EASEL_CLASSIFY_PLACEHOLDER_IMAGES', env.EASEL_CLASSIFY_PLACEHOLDER_IMAGES);
  if (env.EASEL_BLOCKLIST && Array.isArray(out.blocklists)) {
    out.blocklists.push({ id: 'EASEL_BLOCKLIST', terms: env.EASEL_BLOCKLIST.split(',').map((t) => t.trim()).filter(Boolean) });
  }
  if (env.EASEL_BLOCKLIST_FILE && Array.isArray(out.blocklists)) out.blocklists.push({ id: 'EASEL_BLOCKLIST_FILE', file: env.EASEL_BLOCKLIST_FILE });
  return out;
}

type Fail = (setting: string, problem: string) => never;

/** Checks and completes the safety settings (defaults filled in, paths resolved, keys read from the environment). */
export function validateSafety(raw: SafetyConfig, modelsDir: string, env: NodeJS.ProcessEnv, fail: Fail): SafetyConfig {
  const threshold = thresholdSetting('safety.threshold (EASEL_SAFETY_THRESHOLD)', raw.threshold, fail);
  if (typeof raw.blockProfanity !== 'boolean') fail('safety.blockProfanity (EASEL_BLOCK_PROFANITY)', 'must be true or false');
  if (typeof raw.classifyPlaceholderImages !== 'boolean') fail('safety.classifyPlaceholderImages (EASEL_CLASSIFY_PLACEHOLDER_IMAGES)', 'must be true or false');
  oneOf('safety.imageClassifier (EASEL_IMAGE_CLASSIFIER)', raw.imageClassifier, ['nsfwjs', 'none'], fail);
  oneOf('safety.imageClassifierFailure (EASEL_IMAGE_CLASSIFIER_FAILURE)', raw.imageClassifierFailure, ['block', 'allow'], fail);
  if (!Array.isArray(raw.blocklists)) fail('safety.blocklists', 'must be a list');
  if (!Array.isArray(raw.classifiers)) fail('safety.classifiers', 'must be a list');
  const blocklists = raw.blocklists.map((list, i) => blocklist(`safety.blocklists[${i}]`, list, fail));
  unique('safety.blocklists', blocklists.map((b) => b.id), fail);
  const classifiers = raw.classifiers.map((c, i) => classifier(`safety.classifiers[${i}]`, c, modelsDir, env, fail));
  unique('safety.classifiers', classifiers.map((c) => c.id), fail);
  return { ...raw, threshold, blocklists, classifiers };
}

/** A deployment's own `safety` object, checked against the lists and classifiers that exist. */
export function deploymentSafety(where: string, raw: unknown, safety: SafetyConfig, fail: Fail): DeploymentSafety {
  const d = object(where, raw, ['threshold', 'blockProfanity', 'blocklists', 'classifiers'], fail);
  const out: DeploymentSafety = {};
  if (d.threshold !== undefined) out.threshold = thresholdSetting(`${where}.threshold`, d.threshold, fail);
  if (d.blockProfanity !== undefined) {
    if (typeof d.blockProfanity !== 'boolean') fail(`${where}.blockProfanity`, 'must be true or false');
    out.blockProfanity = d.blockProfanity;
  }
  if (d.blocklists !== undefined) out.blocklists = idList(`${where}.blocklists`, d.blocklists, safety.blocklists.map((b) => b.id), fail);
  if (d.classifiers !== undefined) out.classifiers = idList(`${where}.classifiers`, d.classifiers, safety.classifiers.map((c) => c.id), fail);
  return out;
}

function thresholdSetting(name: string, raw: unknown, fail: Fail): ThresholdSetting {
  if (THRESHOLDS.includes(raw as never)) return raw as ThresholdSetting;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail(name, `must be one of ${THRESHOLDS.join(', ')}, or an object of ${HARM_CATEGORIES.join(', ')} → ${CATEGORY_LEVELS.join(' | ')}; got ${JSON.stringify(raw)}`);
  }
  for (const [category, level] of Object.entries(raw)) {
    if (!HARM_CATEGORIES.includes(category as HarmCategory)) fail(`${name}.${category}`, `is not a category (${HARM_CATEGORIES.join(', ')})`);
    if (!CATEGORY_LEVELS.includes(level as never)) fail(`${name}.${category}`, `must be one of ${CATEGORY_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }
  return raw as ThresholdSetting;
}

function blocklist(where: string, raw: unknown, fail: Fail): BlocklistDefinition {
  const d = object(where, raw, ['id', 'terms', 'patterns', 'file'], fail);
  if (typeof d.id !== 'string' || d.id.trim() === '') fail(`${where}.id`, 'must be a non-empty string');
  for (const key of ['terms', 'patterns'] as const) {
    if (d[key] !== undefined && !(Array.isArray(d[key]) && d[key].every((t) => typeof t === 'string'))) fail(`${where}.${key}`, 'must be a list of strings');
  }
  if (d.file !== undefined && (typeof d.file !== 'string' || d.file === '')) fail(`${where}.file`, 'must be a path');
  if (d.terms === undefined && d.patterns === undefined && d.file === undefined) fail(where, 'needs "terms", "patterns" or "file"');
  return { ...(d as unknown as BlocklistDefinition), ...(d.file === undefined ? {} : { file: resolve(d.file as string) }) };
}

function classifier(where: string, raw: unknown, modelsDir: string, env: NodeJS.ProcessEnv, fail: Fail): ClassifierConfig {
  const common = ['id', 'kind', 'timeoutMs', 'onFailure', 'cutPoints'];
  const kind = (raw as { kind?: unknown } | null)?.kind;
  oneOf(`${where}.kind`, kind, CLASSIFIER_KINDS, fail);
  const d = object(where, raw, kind === 'onnx' ? [...common, 'folder', 'labels', 'maxTokens'] : [...common, 'url', 'key', 'keyEnv', 'model'], fail);
  if (typeof d.id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(d.id)) fail(`${where}.id`, 'must be 1–64 letters, digits, ".", "_" or "-"');
  const timeoutMs = d.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 1 || (timeoutMs as number) > 600_000) fail(`${where}.timeoutMs`, 'must be an integer from 1 to 600000');
  const onFailure = d.onFailure ?? 'block';
  oneOf(`${where}.onFailure`, onFailure, ['block', 'allow'], fail);
  if (d.cutPoints !== undefined) cutPoints(`${where}.cutPoints`, d.cutPoints, fail);
  const base = { ...d, timeoutMs, onFailure } as ClassifierConfig;
  if (base.kind === 'onnx') {
    if (typeof d.folder !== 'string' || d.folder.trim() === '') fail(`${where}.folder`, 'must name a model folder (a path, or a name under models.dir)');
    if (d.labels !== undefined) {
      const allowed = [...HARM_CATEGORIES, 'jailbreak', 'profanity', 'ignore'];
      for (const [label, target] of Object.entries(object(`${where}.labels`, d.labels, null, fail))) {
        if (!allowed.includes(target as string)) fail(`${where}.labels.${label}`, `must be one of ${allowed.join(', ')}`);
      }
    }
    if (d.maxTokens !== undefined && !(Number.isInteger(d.maxTokens) && (d.maxTokens as number) >= 2 && (d.maxTokens as number) <= 8192)) {
      fail(`${where}.maxTokens`, 'must be an integer from 2 to 8192');
    }
    return { ...base, folder: resolve(modelsDir, d.folder as string) };
  }
  let url: URL | undefined;
  try {
    url = new URL(d.url as string);
  } catch {
    /* reported below */
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) fail(`${where}.url`, `must be an absolute http(s) URL, got ${JSON.stringify(d.url)}`);
  if (d.key !== undefined && typeof d.key !== 'string') fail(`${where}.key`, 'must be a string');
  if (d.model !== undefined && typeof d.model !== 'string') fail(`${where}.model`, 'must be a string');
  if (d.keyEnv !== undefined) {
    if (typeof d.keyEnv !== 'string' || !env[d.keyEnv]) fail(`${where}.keyEnv`, `names an environment variable that is not set: ${JSON.stringify(d.keyEnv)}`);
    return { ...base, key: env[d.keyEnv as string] } as HttpClassifierConfig;
  }
  return base;
}

function cutPoints(where: string, raw: unknown, fail: Fail): void {
  const d = object(where, raw, ['low', 'medium', 'high'], fail);
  const [low, medium, high] = [d.low, d.medium, d.high];
  const ok = [low, medium, high].every((x) => typeof x === 'number') && 0 < (low as number) && (low as number) <= (medium as number) && (medium as number) <= (high as number) && (high as number) <= 1;
  if (!ok) fail(where, 'must be { "low", "medium", "high" } probabilities with 0 < low ≤ medium ≤ high ≤ 1');
}

function idList(where: string, raw: unknown, known: string[], fail: Fail): string[] {
  if (!Array.isArray(raw) || !raw.every((x) => typeof x === 'string')) return fail(where, 'must be a list of ids');
  for (const id of raw) if (!known.includes(id)) fail(where, `names ${JSON.stringify(id)}, which is not defined (defined: ${known.join(', ') || 'none'})`);
  return raw;
}

function object(where: string, raw: unknown, keys: string[] | null, fail: Fail): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(where, 'must be an object');
  if (keys !== null) for (const key of Object.keys(raw)) if (!keys.includes(key)) fail(`${where}.${key}`, `is not a setting (known: ${keys.join(', ')})`);
  return raw as Record<string, unknown>;
}

function unique(where: string, ids: string[], fail: Fail): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) fail(where, `repeats the id ${JSON.stringify(id)}`);
    seen.add(id);
  }
}

function oneOf(name: string, raw: unknown, allowed: readonly string[], fail: Fail): void {
  if (!allowed.includes(raw as string)) fail(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
}
