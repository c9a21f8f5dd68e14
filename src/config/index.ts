import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { familyOf, type FamilyId } from '../contract/families.ts';

export interface DeploymentConfig {
  /** The name clients use in URLs and `model` ("dall-e-3"). */
  name: string;
  /** The model family that decides validation and response shape. */
  model: FamilyId;
  /** Which engine renders it; only "placeholder" until a diffusion engine is configured. */
  engine: 'placeholder';
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** Base of image and operation URLs; null = the address the server listens on. */
  publicUrl: string | null;
  /** Accepted keys from EASEL_API_KEYS; empty = generate one and keep it in the data directory. */
  apiKeys: string[];
  deployments: DeploymentConfig[];
  limits: {
    maxJsonBodyBytes: number;
    maxImageBytes: number;
    maxMaskBytes: number;
    /** Decoded pixels allowed per uploaded image (decompression bombs stop here). */
    maxInputPixels: number;
  };
  queue: { concurrency: number; maxWaiting: number; jobTimeoutSeconds: number; shutdownGraceSeconds: number };
  imageUrlTtlSeconds: number;
  sweepIntervalSeconds: number;
  safety: { blocklists: { id: string; terms: string[] }[] };
  logLevel: string;
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
  limits: {
    maxJsonBodyBytes: 1024 * 1024,
    maxImageBytes: 50 * 1024 * 1024,
    maxMaskBytes: 4 * 1024 * 1024,
    maxInputPixels: 4096 * 4096,
  },
  queue: { concurrency: 2, maxWaiting: 64, jobTimeoutSeconds: 600, shutdownGraceSeconds: 10 },
  imageUrlTtlSeconds: 24 * 60 * 60,
  sweepIntervalSeconds: 300,
  safety: { blocklists: [] },
  logLevel: 'info',
};

/**
 * Build the one typed configuration: defaults, then the file named by EASEL_CONFIG (JSON, same
 * shape as Config), then environment variables. Throws ConfigError naming the setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const file: ConfigOverrides = env.EASEL_CONFIG ? readConfigFile(env.EASEL_CONFIG) : {};
  const merged: Config = {
    ...DEFAULTS,
    ...file,
    limits: { ...DEFAULTS.limits, ...(file.limits ?? {}) },
    queue: { ...DEFAULTS.queue, ...(file.queue ?? {}) },
    safety: { ...DEFAULTS.safety, ...(file.safety ?? {}) },
  };
  if (env.HOST) merged.host = env.HOST;
  if (env.PORT !== undefined && env.PORT !== '') merged.port = intSetting('PORT', env.PORT, 0, 65535);
  if (env.EASEL_DATA_DIR) merged.dataDir = env.EASEL_DATA_DIR;
  if (env.EASEL_PUBLIC_URL) merged.publicUrl = env.EASEL_PUBLIC_URL;
  if (env.EASEL_API_KEYS) merged.apiKeys = env.EASEL_API_KEYS.split(',').map((k) => k.trim()).filter(Boolean);
  if (env.EASEL_LOG_LEVEL) merged.logLevel = env.EASEL_LOG_LEVEL;
  if (env.EASEL_IMAGE_URL_TTL_SECONDS) {
    merged.imageUrlTtlSeconds = intSetting('EASEL_IMAGE_URL_TTL_SECONDS', env.EASEL_IMAGE_URL_TTL_SECONDS, 1, 30 * 86400);
  }
  if (env.EASEL_QUEUE_CONCURRENCY) {
    merged.queue.concurrency = intSetting('EASEL_QUEUE_CONCURRENCY', env.EASEL_QUEUE_CONCURRENCY, 1, 1024);
  }
  if (env.EASEL_QUEUE_MAX_WAITING) {
    merged.queue.maxWaiting = intSetting('EASEL_QUEUE_MAX_WAITING', env.EASEL_QUEUE_MAX_WAITING, 0, 1_000_000);
  }
  if (env.EASEL_BLOCKLIST) {
    merged.safety.blocklists = [
      ...merged.safety.blocklists,
      { id: 'EASEL_BLOCKLIST', terms: env.EASEL_BLOCKLIST.split(',').map((t) => t.trim()).filter(Boolean) },
    ];
  }
  return validate({
    ...merged,
    ...overrides,
    limits: { ...merged.limits, ...overrides.limits },
    queue: { ...merged.queue, ...overrides.queue },
    safety: { ...merged.safety, ...overrides.safety },
  });
}

/** What a config file (or a caller) may set: any field, nested groups in part. */
export type ConfigOverrides = Partial<Omit<Config, 'limits' | 'queue' | 'safety'>> & {
  limits?: Partial<Config['limits']>;
  queue?: Partial<Config['queue']>;
  safety?: Partial<Config['safety']>;
};

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

function intSetting(name: string, raw: string | number, min: number, max: number): number {
  const value = typeof raw === 'number' ? raw : /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function validate(config: Config): Config {
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
  const names = new Set<string>();
  config.deployments = config.deployments.map((d, i) => {
    const where = `deployments[${i}]`;
    if (typeof d?.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(d.name)) {
      throw new ConfigError(`${where}.name`, 'must be 1–64 letters, digits, ".", "_" or "-"');
    }
    if (names.has(d.name)) throw new ConfigError(`${where}.name`, `repeats the name ${d.name}`);
    names.add(d.name);
    const model = typeof d.model === 'string' ? familyOf(d.model) : undefined;
    if (!model) throw new ConfigError(`${where}.model`, 'must be one of dall-e-2, dall-e-3, gpt-image-1');
    if ((d.engine ?? 'placeholder') !== 'placeholder') throw new ConfigError(`${where}.engine`, 'must be "placeholder"');
    return { name: d.name, model, engine: 'placeholder' as const };
  });
  for (const [name, value] of Object.entries(config.limits)) intSetting(`limits.${name}`, value, 1, Number.MAX_SAFE_INTEGER);
  intSetting('queue.concurrency', config.queue.concurrency, 1, 1024);
  intSetting('queue.maxWaiting', config.queue.maxWaiting, 0, 1_000_000);
  intSetting('queue.jobTimeoutSeconds', config.queue.jobTimeoutSeconds, 0, 86400);
  intSetting('queue.shutdownGraceSeconds', config.queue.shutdownGraceSeconds, 0, 3600);
  intSetting('imageUrlTtlSeconds', config.imageUrlTtlSeconds, 1, 30 * 86400);
  intSetting('sweepIntervalSeconds', config.sweepIntervalSeconds, 1, 86400);
  for (const [i, list] of config.safety.blocklists.entries()) {
    if (typeof list?.id !== 'string' || !Array.isArray(list.terms) || !list.terms.every((t) => typeof t === 'string')) {
      throw new ConfigError(`safety.blocklists[${i}]`, 'must be { "id": string, "terms": string[] }');
    }
  }
  return { ...config, dataDir: resolve(config.dataDir) };
}
