// What each scale-out role needs from the configuration. loadConfig has already checked every value
// that is set (schemes, lengths, ranges); this checks that the settings a role cannot run without are
// set at all, and hands them on typed, so the queue, store and blob adapters never look for a missing one.
import { type Config, ConfigError } from './index.ts';

export type ScaleOutRole = 'api' | 'worker';

/** What both roles share: the queue and registry in Redis, operations in PostgreSQL, images in S3. */
export interface SharedServiceSettings {
  redis: { url: string };
  database: { url: string; schema: string | null };
  s3: {
    /** Null: AWS S3 itself, at the region's endpoint. Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */
    endpoint: string | null;
    bucket: string;
    region: string;
    forcePathStyle: boolean;
    presignedUrls: boolean;
  };
  /** The Redis queue's timings (BullMQ's lockDuration, stalledInterval and attempts, in seconds). */
  queue: { lockSeconds: number; stalledCheckSeconds: number; attempts: number };
  workers: { heartbeatSeconds: number; deadAfterSeconds: number };
}

/** `easel serve --role api`: no models; it admits jobs, streams answers and serves images. */
export interface ApiNodeSettings extends SharedServiceSettings {
  role: 'api';
  /** Signs image links; every API node has the same one, so any node serves any link. */
  signingSecret: string;
  /** From EASEL_API_KEYS / apiKeys: a key generated in one node's data directory would not work on the others. */
  apiKeys: string[];
}

/** `easel worker`: loads its deployments and runs their jobs. */
export interface WorkerSettings extends SharedServiceSettings {
  role: 'worker';
  /** Set when configured (a worker signs nothing today); null otherwise. */
  signingSecret: string | null;
}

export type ScaleOutSettings = ApiNodeSettings | WorkerSettings;

interface Requirement {
  setting: string;
  variable: string;
  missing: (config: Config) => boolean;
  why?: string;
}

const REDIS: Requirement = { setting: 'redis.url', variable: 'EASEL_REDIS_URL', missing: (c) => !c.redis.url };
const DATABASE: Requirement = {
  setting: 'database.url',
  variable: 'EASEL_DATABASE_URL',
  missing: (c) => !c.database.url,
};
const BUCKET: Requirement = { setting: 's3.bucket', variable: 'EASEL_S3_BUCKET', missing: (c) => !c.s3.bucket };
const SECRET: Requirement = {
  setting: 'signingSecret',
  variable: 'EASEL_SIGNING_SECRET',
  missing: (c) => !c.signingSecret,
  why: 'the same on every API node',
};
const KEYS: Requirement = {
  setting: 'apiKeys',
  variable: 'EASEL_API_KEYS',
  missing: (c) => c.apiKeys.length === 0,
  why: 'shared by every API node; a key generated in one data directory would work on that node only',
};

const REQUIRED: Record<ScaleOutRole, Requirement[]> = {
  api: [REDIS, DATABASE, BUCKET, SECRET, KEYS],
  worker: [REDIS, DATABASE, BUCKET],
};

/**
 * The settings `role` needs, typed and complete. Throws ConfigError naming every missing setting with
 * its environment variable (all of them at once, so one restart fixes the lot).
 */
export function scaleOutSettings(config: Config, role: 'api'): ApiNodeSettings;
export function scaleOutSettings(config: Config, role: 'worker'): WorkerSettings;
export function scaleOutSettings(config: Config, role: ScaleOutRole): ScaleOutSettings;
export function scaleOutSettings(config: Config, role: ScaleOutRole): ScaleOutSettings {
  const missing = REQUIRED[role].filter((r) => r.missing(config));
  if (missing.length > 0) {
    const list = missing.map((r) => `${r.setting} (${r.variable}${r.why ? `; ${r.why}` : ''})`).join(', ');
    throw new ConfigError(`the ${role} role`, `needs settings that are not set: ${list}`);
  }
  const shared: SharedServiceSettings = {
    redis: { url: config.redis.url! },
    database: { url: config.database.url!, schema: config.database.schema ?? null },
    s3: {
      endpoint: config.s3.endpoint ?? null,
      bucket: config.s3.bucket!,
      region: config.s3.region,
      forcePathStyle: config.s3.forcePathStyle,
      presignedUrls: config.s3.presignedUrls,
    },
    queue: {
      lockSeconds: config.queue.lockSeconds,
      stalledCheckSeconds: config.queue.stalledCheckSeconds,
      attempts: config.queue.attempts,
    },
    workers: { ...config.workers },
  };
  if (role === 'api') return { ...shared, role, signingSecret: config.signingSecret!, apiKeys: [...config.apiKeys] };
  return { ...shared, role, signingSecret: config.signingSecret ?? null };
}
