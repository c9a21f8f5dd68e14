import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { Static } from 'typebox';

import { type FamilyId, familyOf } from '../contract/families.ts';
import { blocklistsFromEnv, deploymentSafety, resolveSafety, type SafetyConfig } from './safety.ts';
import {
  ConfigFileSchema,
  type DiffusionDeploymentSchema,
  type DiffusionSchema,
  ENV_ONLY,
  ENV_SETTINGS,
  type PlaceholderDeploymentSchema,
} from './schema.ts';
import { redactUrl } from './service-urls.ts';
import { envForm, findProblem, fromEnv, schemaAt } from './validate.ts';

export type { ClassifierConfig, HttpClassifierConfig, OnnxClassifierConfig, SafetyConfig } from './safety.ts';
export { redactUrl } from './service-urls.ts';

// The types below are the schema's (schema.ts), as loadConfig resolves them: defaults filled in,
// model aliases turned into families, folders made absolute.

/** What a config file (or a caller) may set: any field, nested groups in part. */
export type ConfigOverrides = Static<typeof ConfigFileSchema>;

/** How a diffusion deployment generates; `folder` is absolute. */
export type DiffusionSettings = Static<typeof DiffusionSchema>;
export type SchedulerName = NonNullable<DiffusionSettings['scheduler']>;
export type AutoencoderName = NonNullable<DiffusionSettings['autoencoder']>;

/** A deployment with its engine named and `model` as the family that decides validation and response shape. */
type Resolved<D, Engine> = Omit<D, 'model' | 'engine'> & { model: FamilyId; engine: Engine };
export type PlaceholderDeployment = Resolved<Static<typeof PlaceholderDeploymentSchema>, 'placeholder'>;
export type DiffusionDeployment = Resolved<Static<typeof DiffusionDeploymentSchema>, 'diffusion'>;
export type DeploymentConfig = PlaceholderDeployment | DiffusionDeployment;

/** The groups of settings (limits, queue …) that a file may set in part, each key with a default. */
type GROUPS = 'models' | 'onnx' | 'limits' | 'queue' | 'safety' | 'workers';
/** The scale-out services: groups whose addresses have no default (unset until a role needs them). */
type SERVICES = 'redis' | 'database' | 's3';
type Group<K extends GROUPS | SERVICES> = NonNullable<ConfigOverrides[K]>;
/** Every setting filled in: defaults, file, environment and caller merged, before resolveConfig. */
type Merged = Required<Omit<ConfigOverrides, GROUPS | SERVICES | 'signingSecret'>> & {
  [K in GROUPS]: Required<Group<K>>;
} & {
  redis: Group<'redis'>;
  database: Group<'database'>;
  s3: Group<'s3'> & Required<Pick<Group<'s3'>, 'region' | 'forcePathStyle' | 'presignedUrls'>>;
  /** Unset: embedded mode keeps its own in the data directory. */
  signingSecret?: string;
};

export type Config = Omit<Merged, 'deployments' | 'safety'> & { deployments: DeploymentConfig[]; safety: SafetyConfig };

export class ConfigError extends Error {
  constructor(setting: string, problem: string) {
    super(`Invalid configuration: ${setting} ${problem}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_DEPLOYMENTS: DeploymentConfig[] = [
  { name: 'dall-e-2', model: 'dall-e-2', engine: 'placeholder' },
  { name: 'dall-e-3', model: 'dall-e-3', engine: 'placeholder' },
  { name: 'gpt-image-1', model: 'gpt-image-1', engine: 'placeholder' },
];

/** Every default, in one place (the README's configuration tables list them). */
const DEFAULTS: Merged = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  publicUrl: null,
  apiKeys: [],
  deployments: DEFAULT_DEPLOYMENTS,
  models: { dir: '' },
  onnx: { executionProvider: 'cpu', threads: 0, fuseAttention: true },
  limits: {
    maxJsonBodyBytes: 1024 * 1024,
    maxImageBytes: 50 * 1024 * 1024,
    maxMaskBytes: 4 * 1024 * 1024,
    maxInputPixels: 4096 * 4096,
    // 256 MiB of RGBA per edit, 512 MiB for all edits in flight (README, "Operations").
    maxEditPixels: 4 * 4096 * 4096,
    maxPixelsInFlight: 8 * 4096 * 4096,
    requestTimeoutSeconds: 300,
    headersTimeoutSeconds: 60,
  },
  queue: {
    concurrency: 2,
    maxWaiting: 64,
    jobTimeoutSeconds: 600,
    shutdownGraceSeconds: 10,
    lockSeconds: 10,
    stalledCheckSeconds: 5,
    attempts: 2,
  },
  imageUrlTtlSeconds: 24 * 60 * 60,
  sweepIntervalSeconds: 300,
  safety: {
    threshold: 'medium',
    blockProfanity: false,
    blocklists: [],
    classifiers: [],
    imageClassifier: 'nsfwjs',
    imageClassifierFailure: 'block',
    classifyPlaceholderImages: false,
  },
  logLevel: 'info',
  logPrompts: false,
  redis: {},
  database: {},
  s3: { region: 'us-east-1', forcePathStyle: false, presignedUrls: false },
  workers: { heartbeatSeconds: 5, deadAfterSeconds: 15 },
};

/**
 * Build the one typed configuration: defaults, then the file named by EASEL_CONFIG (JSON, same
 * shape as Config), then environment variables. Throws ConfigError naming the setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  checkEnv(env);
  const file: ConfigOverrides = env.EASEL_CONFIG ? readConfigFile(env.EASEL_CONFIG) : {};
  checkAgainstSchema(file, env.EASEL_CONFIG ? ` (in ${env.EASEL_CONFIG})` : '');
  checkAgainstSchema(overrides, '');
  const merged = overlay(overlay(DEFAULTS, file), settingsFromEnv(env));
  // The quick way to real images: every placeholder deployment generates with this model instead.
  if (env.EASEL_MODEL) {
    const folder = env.EASEL_MODEL;
    merged.deployments = merged.deployments.map((d) =>
      (d.engine ?? 'placeholder') === 'placeholder'
        ? { name: d.name, model: d.model, engine: 'diffusion' as const, diffusion: { folder } }
        : d,
    );
  }
  // Every diffusion deployment that does not choose its autoencoder itself (EASEL_MODEL's included).
  if (env.EASEL_AUTOENCODER) {
    const autoencoder = fromEnv(ENV_ONLY.EASEL_AUTOENCODER!, env.EASEL_AUTOENCODER) as AutoencoderName;
    merged.deployments = merged.deployments.map((d) =>
      d.engine !== 'diffusion' || 'autoencoder' in d.diffusion
        ? d
        : { ...d, diffusion: { ...d.diffusion, autoencoder } },
    );
  }
  merged.safety = blocklistsFromEnv(merged.safety, env);
  const config = overlay(merged, overrides);
  // What the environment built (EASEL_MODEL's folder) meets the same schema as the file.
  checkAgainstSchema(config, '');
  return resolveConfig(env, config);
}

/** `settings` over `base`: top-level keys replace, groups (limits, queue …) merge key by key. */
function overlay(base: Merged, settings: ConfigOverrides): Merged {
  const group = <K extends GROUPS | SERVICES>(key: K) => ({ ...base[key], ...settings[key] });
  return {
    ...base,
    ...(settings as Partial<Merged>),
    models: group('models'),
    onnx: group('onnx'),
    limits: group('limits'),
    queue: group('queue'),
    safety: group('safety'),
    workers: group('workers'),
    redis: group('redis'),
    database: group('database'),
    s3: group('s3'),
  };
}

/** The variables that set one file key each (ENV_SETTINGS), as the file's settings; checkEnv has checked them. */
function settingsFromEnv(env: NodeJS.ProcessEnv): ConfigOverrides {
  const settings: Record<string, Record<string, unknown>> = {};
  for (const [name, path] of Object.entries(ENV_SETTINGS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = fromEnv(envForm(schemaAt(ConfigFileSchema, path)), raw);
    const [first, second] = path.split('.') as [string, string?];
    if (second === undefined) (settings as Record<string, unknown>)[first] = value;
    else (settings[first] ??= {})[second] = value;
  }
  return settings as ConfigOverrides;
}

/** The file's (or a caller's) settings against the schema: unknown keys, wrong types, values out of range. */
function checkAgainstSchema(settings: unknown, where: string): void {
  const found = findProblem(ConfigFileSchema, settings);
  if (found) throw new ConfigError(found.setting, `${found.problem}${where}`);
}

/**
 * Every set variable converted to its setting's type and checked against its schema; the message names the variable.
 */
function checkEnv(env: NodeJS.ProcessEnv): void {
  const variables = [
    ...Object.entries(ENV_SETTINGS).map(
      ([name, path]) => [name, envForm(schemaAt(ConfigFileSchema, path)), ` (the file's ${path})`] as const,
    ),
    ...Object.entries(ENV_ONLY).map(([name, schema]) => [name, schema, ''] as const),
  ];
  for (const [name, schema, path] of variables) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const found = findProblem(schema as never, fromEnv(schema as never, raw));
    if (found) throw new ConfigError(name, `${found.problem}${path}`);
  }
}

/** An environment-only variable (ENV_ONLY) converted to its schema's type; undefined when unset. */
export function envSetting(env: NodeJS.ProcessEnv, name: keyof typeof ENV_ONLY): unknown {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const schema = ENV_ONLY[name]!;
  const value = fromEnv(schema as never, raw);
  const found = findProblem(schema as never, value);
  if (found) throw new ConfigError(name, found.problem);
  return value;
}

function readConfigFile(path: string): ConfigOverrides {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('EASEL_CONFIG', `names a file that cannot be read: ${path} (${(error as Error).message})`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as ConfigOverrides;
  } catch (error) {
    throw new ConfigError('EASEL_CONFIG', `file ${path} is not a JSON object: ${(error as Error).message}`);
  }
}

/**
 * The checks a schema cannot express, on a schema-checked configuration, and what the service
 * needs resolved: absolute paths, model families, classifier keys, publicUrl without a trailing slash.
 */
function resolveConfig(env: NodeJS.ProcessEnv, config: Merged): Config {
  if (config.publicUrl !== null) {
    try {
      const url = new URL(config.publicUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new ConfigError(
        'EASEL_PUBLIC_URL',
        `must be an absolute http(s) URL, got ${JSON.stringify(config.publicUrl)}`,
      );
    }
    config.publicUrl = config.publicUrl.replace(/\/+$/, '');
  }
  const dataDir = resolve(config.dataDir);
  const modelsDir = resolve(dataDir, config.models.dir || 'models');
  const fail = (setting: string, problem: string): never => {
    throw new ConfigError(setting, problem);
  };
  const safety = resolveSafety(config.safety, modelsDir, env, fail);
  const names = new Set<string>();
  const deployments = config.deployments.map((d, i): DeploymentConfig => {
    const where = `deployments[${i}]`;
    if (names.has(d.name)) throw new ConfigError(`${where}.name`, `repeats the name ${d.name}`);
    names.add(d.name);
    // `model` takes aliases ("dalle3"), which the schema leaves to familyOf.
    const model = familyOf(d.model);
    if (!model) throw new ConfigError(`${where}.model`, 'must be one of dall-e-2, dall-e-3, gpt-image-1');
    const own = d.safety === undefined ? {} : { safety: deploymentSafety(`${where}.safety`, d.safety, safety, fail) };
    if (d.engine !== 'diffusion') {
      const placeholder = d.placeholder === undefined ? {} : { placeholder: d.placeholder };
      return { name: d.name, model, engine: 'placeholder', ...own, ...placeholder };
    }
    return {
      name: d.name,
      model,
      engine: d.engine,
      ...own,
      diffusion: { ...d.diffusion, folder: resolve(modelsDir, d.diffusion.folder) },
    };
  });
  if (config.limits.maxPixelsInFlight < config.limits.maxEditPixels) {
    throw new ConfigError(
      'limits.maxPixelsInFlight (EASEL_MAX_PIXELS_IN_FLIGHT)',
      'must be at least limits.maxEditPixels, or no edit at the limit could ever run',
    );
  }
  checkServiceUrl(config.redis.url, 'redis.url (EASEL_REDIS_URL)', true);
  checkServiceUrl(config.database.url, 'database.url (EASEL_DATABASE_URL)', false);
  checkServiceUrl(config.s3.endpoint, 's3.endpoint (EASEL_S3_ENDPOINT)', true);
  if (config.workers.deadAfterSeconds < 2 * config.workers.heartbeatSeconds) {
    throw new ConfigError(
      'workers.deadAfterSeconds (EASEL_WORKER_DEAD_AFTER_SECONDS)',
      `must be at least twice workers.heartbeatSeconds (${config.workers.heartbeatSeconds}), or a live worker between two heartbeats could count as gone`,
    );
  }
  return { ...config, dataDir, models: { dir: modelsDir }, deployments, safety };
}

/**
 * A service URL the schema let through (its scheme is right) must also parse, and name a host where the
 * service needs one (PostgreSQL may instead name a socket directory in `?host=`). The message shows the URL
 * without its password.
 */
function checkServiceUrl(url: string | undefined, setting: string, needsHost: boolean): void {
  if (url === undefined) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(setting, `is not a valid URL: ${redactUrl(url)}`);
  }
  if (needsHost && parsed.hostname === '') throw new ConfigError(setting, `names no host: ${redactUrl(url)}`);
}
