import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { familyOf, type FamilyId } from '../contract/families.ts';
import type { DeploymentSafety } from '../safety/policy.ts';
import { envForm, findProblem, fromEnv, schemaAt } from './validate.ts';
import { ConfigFileSchema, ENV_ONLY, ENV_SETTINGS } from './schema.ts';
import { deploymentSafety, SAFETY_DEFAULTS, safetyFromEnv, validateSafety, type SafetyConfig } from './safety.ts';

export type { ClassifierConfig, HttpClassifierConfig, OnnxClassifierConfig, SafetyConfig } from './safety.ts';

interface DeploymentBase {
  /** The name clients use in URLs and `model` ("dall-e-3"). */
  name: string;
  /** The model family that decides validation and response shape. */
  model: FamilyId;
  /** This deployment's own thresholds, profanity setting, blocklists and classifiers (default: the service's). */
  safety?: DeploymentSafety;
}

/** The built-in engine: deterministic pictures with the prompt written on them (no model needed). */
export interface PlaceholderDeployment extends DeploymentBase {
  engine: 'placeholder';
}

export const SCHEDULER_NAMES = ['euler', 'euler-ancestral', 'ddim', 'lcm'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** How a diffusion deployment generates; every field but the folder has a per-model default. */
export interface DiffusionSettings {
  /** Absolute path of the model folder (config: absolute, or a name under models.dir). */
  folder: string;
  /** Denoising steps; default from the model family (SD-Turbo/SDXL-Turbo 1–4, LCM 4, others 25). */
  steps?: number;
  /** Replaces the model's own scheduler_config.json class (its β schedule is kept). */
  scheduler?: SchedulerName;
  /** Classifier-free guidance; ≤ 1 turns it off (the Turbo models' setting). */
  guidanceScale?: number;
  /** Edge of the native square in pixels (512 SD 1.5/2.1 base/Turbo, 1024 SDXL); default from the model. */
  resolution?: number;
  /**
   * The autoencoder that turns latents into pixels (and images into latents for edits): `full`, the
   * model's VAE (default), or `tiny`, its tiny autoencoder (vae_tiny_decoder/, TAESD/TAESDXL), about
   * 40× less compute per decode at some loss of fine detail.
   */
  autoencoder?: AutoencoderName;
}

export const AUTOENCODER_NAMES = ['full', 'tiny'] as const;
export type AutoencoderName = (typeof AUTOENCODER_NAMES)[number];

/** A Stable Diffusion family model in the diffusers/optimum ONNX layout, run with onnxruntime-node. */
export interface DiffusionDeployment extends DeploymentBase {
  engine: 'diffusion';
  diffusion: DiffusionSettings;
}

export type DeploymentConfig = PlaceholderDeployment | DiffusionDeployment;

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** Base of image and operation URLs; null = the address the server listens on. */
  publicUrl: string | null;
  /** Accepted keys from EASEL_API_KEYS; empty = generate one and keep it in the data directory. */
  apiKeys: string[];
  deployments: DeploymentConfig[];
  /** Where `easel pull` installs model folders and where bare folder names resolve; default <dataDir>/models. */
  models: { dir: string };
  /** onnxruntime-node settings shared by every diffusion deployment. */
  onnx: {
    /** "cuda" needs onnxruntime-node's CUDA 12 libraries (README); falls back to nothing: the deployment is unavailable. */
    executionProvider: 'cpu' | 'cuda';
    /** intra-op threads per session; 0 = automatic: the cores divided among the models that can run at once (src/runtime/onnx-threads.ts). */
    threads: number;
  };
  limits: {
    maxJsonBodyBytes: number;
    maxImageBytes: number;
    maxMaskBytes: number;
    /** Decoded pixels allowed per uploaded image (decompression bombs stop here). */
    maxInputPixels: number;
    /** Decoded pixels one edit may hold: its uploads (and their resized copies) and its output images. */
    maxEditPixels: number;
    /** Decoded pixels all admitted edits may hold together; one more edit gets a 429. */
    maxPixelsInFlight: number;
    /**
     * Time a client has to send a whole request, headers and body (a stalled upload is answered
     * 408 and closed). Generation time does not count: the clock stops once the request is in.
     */
    requestTimeoutSeconds: number;
    /** Time a client has to send the request line and headers (the request timeout applies if shorter). */
    headersTimeoutSeconds: number;
  };
  queue: { concurrency: number; maxWaiting: number; jobTimeoutSeconds: number; shutdownGraceSeconds: number };
  imageUrlTtlSeconds: number;
  sweepIntervalSeconds: number;
  safety: SafetyConfig;
  logLevel: string;
  /** Log each request's prompt (with its request id). Off by default: prompts are users' data. */
  logPrompts: boolean;
}

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

const DEFAULTS: Config = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  publicUrl: null,
  apiKeys: [],
  deployments: DEFAULT_DEPLOYMENTS,
  models: { dir: '' },
  onnx: { executionProvider: 'cpu', threads: 0 },
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
  queue: { concurrency: 2, maxWaiting: 64, jobTimeoutSeconds: 600, shutdownGraceSeconds: 10 },
  imageUrlTtlSeconds: 24 * 60 * 60,
  sweepIntervalSeconds: 300,
  safety: SAFETY_DEFAULTS,
  logLevel: 'info',
  logPrompts: false,
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
  const merged: Config = {
    ...DEFAULTS,
    ...file,
    limits: { ...DEFAULTS.limits, ...(file.limits ?? {}) },
    queue: { ...DEFAULTS.queue, ...(file.queue ?? {}) },
    safety: { ...DEFAULTS.safety, ...(file.safety ?? {}) },
    models: { ...DEFAULTS.models, ...(file.models ?? {}) },
    onnx: { ...DEFAULTS.onnx, ...(file.onnx ?? {}) },
  };
  if (env.HOST) merged.host = env.HOST;
  if (env.PORT !== undefined && env.PORT !== '') merged.port = intSetting('PORT', env.PORT, 0, 65535);
  if (env.EASEL_DATA_DIR) merged.dataDir = env.EASEL_DATA_DIR;
  if (env.EASEL_PUBLIC_URL) merged.publicUrl = env.EASEL_PUBLIC_URL;
  if (env.EASEL_API_KEYS) merged.apiKeys = env.EASEL_API_KEYS.split(',').map((k) => k.trim()).filter(Boolean);
  if (env.EASEL_LOG_LEVEL) merged.logLevel = env.EASEL_LOG_LEVEL.trim().toLowerCase();
  if (env.EASEL_LOG_PROMPTS) merged.logPrompts = boolSetting('EASEL_LOG_PROMPTS', env.EASEL_LOG_PROMPTS);
  if (env.EASEL_IMAGE_URL_TTL_SECONDS) {
    merged.imageUrlTtlSeconds = intSetting('EASEL_IMAGE_URL_TTL_SECONDS', env.EASEL_IMAGE_URL_TTL_SECONDS, 1, 30 * 86400);
  }
  if (env.EASEL_QUEUE_CONCURRENCY) {
    merged.queue.concurrency = intSetting('EASEL_QUEUE_CONCURRENCY', env.EASEL_QUEUE_CONCURRENCY, 1, 1024);
  }
  if (env.EASEL_QUEUE_MAX_WAITING) {
    merged.queue.maxWaiting = intSetting('EASEL_QUEUE_MAX_WAITING', env.EASEL_QUEUE_MAX_WAITING, 0, 1_000_000);
  }
  if (env.EASEL_MAX_EDIT_PIXELS) {
    merged.limits.maxEditPixels = intSetting('EASEL_MAX_EDIT_PIXELS', env.EASEL_MAX_EDIT_PIXELS, 1, Number.MAX_SAFE_INTEGER);
  }
  if (env.EASEL_MAX_PIXELS_IN_FLIGHT) {
    merged.limits.maxPixelsInFlight = intSetting('EASEL_MAX_PIXELS_IN_FLIGHT', env.EASEL_MAX_PIXELS_IN_FLIGHT, 1, Number.MAX_SAFE_INTEGER);
  }
  if (env.EASEL_REQUEST_TIMEOUT_SECONDS) {
    merged.limits.requestTimeoutSeconds = intSetting('EASEL_REQUEST_TIMEOUT_SECONDS', env.EASEL_REQUEST_TIMEOUT_SECONDS, 1, 86400);
  }
  if (env.EASEL_HEADERS_TIMEOUT_SECONDS) {
    merged.limits.headersTimeoutSeconds = intSetting('EASEL_HEADERS_TIMEOUT_SECONDS', env.EASEL_HEADERS_TIMEOUT_SECONDS, 1, 86400);
  }
  if (env.EASEL_MODELS_DIR) merged.models.dir = env.EASEL_MODELS_DIR;
  if (env.EASEL_EXECUTION_PROVIDER) merged.onnx.executionProvider = env.EASEL_EXECUTION_PROVIDER as Config['onnx']['executionProvider'];
  if (env.EASEL_ONNX_THREADS) merged.onnx.threads = intSetting('EASEL_ONNX_THREADS', env.EASEL_ONNX_THREADS, 0, 1024);
  // The quick way to real images: every placeholder deployment generates with this model instead.
  if (env.EASEL_MODEL) {
    const folder = env.EASEL_MODEL;
    merged.deployments = merged.deployments.map((d) =>
      (d.engine ?? 'placeholder') === 'placeholder' ? { name: d.name, model: d.model, engine: 'diffusion' as const, diffusion: { folder } } : d,
    );
  }
  // Every diffusion deployment that does not choose its autoencoder itself (EASEL_MODEL's included).
  if (env.EASEL_AUTOENCODER) {
    const autoencoder = autoencoderSetting('EASEL_AUTOENCODER', env.EASEL_AUTOENCODER);
    merged.deployments = merged.deployments.map((d) => {
      const diffusion = (d as Partial<DiffusionDeployment>).diffusion as unknown;
      if (d.engine !== 'diffusion' || typeof diffusion !== 'object' || diffusion === null || 'autoencoder' in diffusion) return d;
      return { ...d, diffusion: { ...(diffusion as DiffusionSettings), autoencoder } };
    });
  }
  merged.safety = safetyFromEnv(merged.safety, env, boolSetting);
  return validate(env, {
    ...merged,
    ...overrides,
    limits: { ...merged.limits, ...overrides.limits },
    queue: { ...merged.queue, ...overrides.queue },
    safety: { ...merged.safety, ...overrides.safety },
    models: { ...merged.models, ...overrides.models },
    onnx: { ...merged.onnx, ...overrides.onnx },
  });
}

/** What a config file (or a caller) may set: any field, nested groups in part. */
export type ConfigOverrides = Partial<Omit<Config, 'limits' | 'queue' | 'safety' | 'models' | 'onnx'>> & {
  models?: Partial<Config['models']>;
  onnx?: Partial<Config['onnx']>;
  limits?: Partial<Config['limits']>;
  queue?: Partial<Config['queue']>;
  safety?: Partial<Config['safety']>;
};

/** The file's (or a caller's) settings against the schema: unknown keys, wrong types, values out of range. */
function checkAgainstSchema(settings: unknown, where: string): void {
  const found = findProblem(ConfigFileSchema, settings);
  if (found) throw new ConfigError(found.setting, `${found.problem}${where}`);
}

/** Every set variable converted to its setting's type and checked against its schema; the message names the variable. */
function checkEnv(env: NodeJS.ProcessEnv): void {
  const variables = [
    ...Object.entries(ENV_SETTINGS).map(([name, path]) => [name, envForm(schemaAt(ConfigFileSchema, path)), ` (the file's ${path})`] as const),
    ...Object.entries(ENV_ONLY).map(([name, schema]) => [name, schema, ''] as const),
  ];
  for (const [name, schema, path] of variables) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const found = findProblem(schema as never, fromEnv(schema as never, raw));
    if (found) throw new ConfigError(name, `${found.problem}${path}`);
  }
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

function boolSetting(name: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`);
}

function intSetting(name: string, raw: string | number, min: number, max: number): number {
  const value = typeof raw === 'number' ? raw : /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function validate(env: NodeJS.ProcessEnv, config: Config): Config {
  if (config.publicUrl !== null) {
    try {
      const url = new URL(config.publicUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new ConfigError('EASEL_PUBLIC_URL', `must be an absolute http(s) URL, got ${JSON.stringify(config.publicUrl)}`);
    }
    config.publicUrl = config.publicUrl.replace(/\/+$/, '');
  }
  for (const key of config.apiKeys) {
    if (key.length < 8) throw new ConfigError('EASEL_API_KEYS', 'holds a key shorter than 8 characters');
  }
  if (!Array.isArray(config.deployments) || config.deployments.length === 0) {
    throw new ConfigError('deployments', 'must list at least one deployment');
  }
  const dataDir = resolve(config.dataDir);
  const modelsDir = resolve(dataDir, config.models.dir || 'models');
  const fail = (setting: string, problem: string): never => {
    throw new ConfigError(setting, problem);
  };
  const safety = validateSafety(config.safety, modelsDir, env, fail);
  const names = new Set<string>();
  config.deployments = config.deployments.map((d, i): DeploymentConfig => {
    const where = `deployments[${i}]`;
    if (typeof d?.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(d.name)) {
      throw new ConfigError(`${where}.name`, 'must be 1–64 letters, digits, ".", "_" or "-"');
    }
    if (names.has(d.name)) throw new ConfigError(`${where}.name`, `repeats the name ${d.name}`);
    names.add(d.name);
    const model = typeof d.model === 'string' ? familyOf(d.model) : undefined;
    if (!model) throw new ConfigError(`${where}.model`, 'must be one of dall-e-2, dall-e-3, gpt-image-1');
    const engine = d.engine ?? 'placeholder';
    const own = d.safety === undefined ? {} : { safety: deploymentSafety(`${where}.safety`, d.safety, safety, fail) };
    if (engine === 'placeholder') return { name: d.name, model, engine, ...own };
    if (engine !== 'diffusion') throw new ConfigError(`${where}.engine`, 'must be "placeholder" or "diffusion"');
    return { name: d.name, model, engine, ...own, diffusion: diffusionSettings(`${where}.diffusion`, (d as DiffusionDeployment).diffusion, modelsDir) };
  });
  // Types and ranges were checked against the schema; what it cannot say is checked here.
  if (config.limits.maxPixelsInFlight < config.limits.maxEditPixels) {
    throw new ConfigError('limits.maxPixelsInFlight (EASEL_MAX_PIXELS_IN_FLIGHT)', 'must be at least limits.maxEditPixels, or no edit at the limit could ever run');
  }
  return { ...config, dataDir, models: { dir: modelsDir }, safety };
}

function autoencoderSetting(where: string, value: unknown): AutoencoderName {
  if (!AUTOENCODER_NAMES.includes(value as AutoencoderName)) throw new ConfigError(where, `must be one of ${AUTOENCODER_NAMES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as AutoencoderName;
}

function diffusionSettings(where: string, raw: unknown, modelsDir: string): DiffusionSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(where, 'must be an object with at least "folder"');
  const d = raw as Record<string, unknown>;
  const known = new Set(['folder', 'steps', 'scheduler', 'guidanceScale', 'resolution', 'autoencoder']);
  for (const key of Object.keys(d)) if (!known.has(key)) throw new ConfigError(`${where}.${key}`, `is not a setting (known: ${[...known].join(', ')})`);
  if (typeof d.folder !== 'string' || d.folder.trim() === '') throw new ConfigError(`${where}.folder`, 'must name a model folder (a path, or a name under models.dir)');
  const settings: DiffusionSettings = { folder: resolve(modelsDir, d.folder) };
  if (d.steps !== undefined) settings.steps = intSetting(`${where}.steps`, d.steps as number, 1, 200);
  if (d.scheduler !== undefined) {
    if (!SCHEDULER_NAMES.includes(d.scheduler as SchedulerName)) throw new ConfigError(`${where}.scheduler`, `must be one of ${SCHEDULER_NAMES.join(', ')}`);
    settings.scheduler = d.scheduler as SchedulerName;
  }
  if (d.guidanceScale !== undefined) {
    if (typeof d.guidanceScale !== 'number' || !(d.guidanceScale >= 0 && d.guidanceScale <= 30)) throw new ConfigError(`${where}.guidanceScale`, 'must be a number from 0 to 30');
    settings.guidanceScale = d.guidanceScale;
  }
  if (d.resolution !== undefined) {
    settings.resolution = intSetting(`${where}.resolution`, d.resolution as number, 64, 2048);
    if (settings.resolution % 64 !== 0) throw new ConfigError(`${where}.resolution`, 'must be a multiple of 64');
  }
  if (d.autoencoder !== undefined) settings.autoencoder = autoencoderSetting(`${where}.autoencoder`, d.autoencoder);
  return settings;
}
