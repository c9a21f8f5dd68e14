// The safety part of the configuration: thresholds, blocklists, prompt classifiers and the image
// classifier. Its shape and the checks of each value are the schema's (schema.ts); what is left here
// is what a schema cannot say: ids that are unique and that deployments refer to, cut points in
// order, a blocklist's content, URLs, keys read from the environment, paths resolved.
import { resolve } from 'node:path';

import type { Static } from 'typebox';

import type { ClassifierSchema, ConfigFileSchema, DeploymentSafetySchema } from './schema.ts';

type ClassifierFile = Static<typeof ClassifierSchema>;
/** A classifier as the service uses it: its timeout (5000 ms) and failure policy ("block") filled in. */
type WithDefaults<C> = C extends unknown
  ? Omit<C, 'timeoutMs' | 'onFailure'> & Required<Pick<C, Extract<keyof C, 'timeoutMs' | 'onFailure'>>>
  : never;
export type ClassifierConfig = WithDefaults<ClassifierFile>;
/**
 * A sequence-classification model in ONNX (model.onnx, tokenizer.json, config.json) in a local folder; `folder`
 * absolute.
 */
export type OnnxClassifierConfig = Extract<ClassifierConfig, { kind: 'onnx' }>;
/**
 * An external moderation endpoint: Azure AI Content Safety text:analyze, or an OpenAI-style /moderations; `key` read
 * from keyEnv.
 */
export type HttpClassifierConfig = Exclude<ClassifierConfig, { kind: 'onnx' }>;

type SafetyFile = NonNullable<Static<typeof ConfigFileSchema>['safety']>;
/** Every safety setting, defaults filled in. */
export type SafetyConfig = Omit<SafetyFileSettings, 'classifiers'> & { classifiers: ClassifierConfig[] };
/** The safety settings as merged from defaults, file and environment, before resolveSafety. */
export type SafetyFileSettings = Required<SafetyFile>;
export type DeploymentSafetySettings = Static<typeof DeploymentSafetySchema>;

// Per classifier; the service-wide defaults are with the others in index.ts.
const CLASSIFIER_DEFAULTS = { timeoutMs: 5000, onFailure: 'block' } as const;

/** The blocklists EASEL_BLOCKLIST and EASEL_BLOCKLIST_FILE add to the file's. */
export function blocklistsFromEnv(safety: SafetyFileSettings, env: NodeJS.ProcessEnv): SafetyFileSettings {
  const blocklists = [...safety.blocklists];
  if (env.EASEL_BLOCKLIST)
    blocklists.push({
      id: 'EASEL_BLOCKLIST',
      terms: env.EASEL_BLOCKLIST.split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    });
  if (env.EASEL_BLOCKLIST_FILE) blocklists.push({ id: 'EASEL_BLOCKLIST_FILE', file: env.EASEL_BLOCKLIST_FILE });
  return { ...safety, blocklists };
}

type Fail = (setting: string, problem: string) => never;

/**
 * Completes schema-checked safety settings (defaults filled in, paths resolved, keys read from the environment) after
 * the cross-field checks.
 */
export function resolveSafety(
  raw: SafetyFileSettings,
  modelsDir: string,
  env: NodeJS.ProcessEnv,
  fail: Fail,
): SafetyConfig {
  const blocklists = raw.blocklists.map((list, i) => {
    if (list.terms === undefined && list.patterns === undefined && list.file === undefined)
      fail(`safety.blocklists[${i}]`, 'needs "terms", "patterns" or "file"');
    return list.file === undefined ? list : { ...list, file: resolve(list.file) };
  });
  unique(
    'safety.blocklists',
    blocklists.map((b) => b.id),
    fail,
  );
  const classifiers = raw.classifiers.map((c, i) => classifier(`safety.classifiers[${i}]`, c, modelsDir, env, fail));
  unique(
    'safety.classifiers',
    classifiers.map((c) => c.id),
    fail,
  );
  return { ...raw, blocklists, classifiers };
}

/** A deployment's own `safety` object: the lists and classifiers it names must exist. */
export function deploymentSafety(
  where: string,
  own: DeploymentSafetySettings,
  safety: SafetyConfig,
  fail: Fail,
): DeploymentSafetySettings {
  if (own.blocklists !== undefined)
    known(
      `${where}.blocklists`,
      own.blocklists,
      safety.blocklists.map((b) => b.id),
      fail,
    );
  if (own.classifiers !== undefined)
    known(
      `${where}.classifiers`,
      own.classifiers,
      safety.classifiers.map((c) => c.id),
      fail,
    );
  return own;
}

function classifier(
  where: string,
  raw: ClassifierFile,
  modelsDir: string,
  env: NodeJS.ProcessEnv,
  fail: Fail,
): ClassifierConfig {
  const cut = raw.cutPoints;
  if (cut !== undefined && !(cut.low <= cut.medium && cut.medium <= cut.high))
    fail(`${where}.cutPoints`, 'must be { "low", "medium", "high" } probabilities with 0 < low ≤ medium ≤ high ≤ 1');
  const base = { ...CLASSIFIER_DEFAULTS, ...raw };
  if (base.kind === 'onnx') return { ...base, folder: resolve(modelsDir, base.folder) };
  let url: URL | undefined;
  try {
    url = new URL(base.url);
  } catch {
    /* reported below */
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    fail(`${where}.url`, `must be an absolute http(s) URL, got ${JSON.stringify(base.url)}`);
  if (base.keyEnv === undefined) return base;
  const key = env[base.keyEnv];
  if (!key) fail(`${where}.keyEnv`, `names an environment variable that is not set: ${JSON.stringify(base.keyEnv)}`);
  return { ...base, key };
}

function known(where: string, ids: string[], defined: string[], fail: Fail): void {
  for (const id of ids)
    if (!defined.includes(id))
      fail(where, `names ${JSON.stringify(id)}, which is not defined (defined: ${defined.join(', ') || 'none'})`);
}

function unique(where: string, ids: string[], fail: Fail): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) fail(where, `repeats the id ${JSON.stringify(id)}`);
    seen.add(id);
  }
}
