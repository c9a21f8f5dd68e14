// The start-up check of a scale-out node: can it reach Redis, PostgreSQL and the S3 endpoint it is
// configured with? A node that cannot should stop at once with a message naming the setting, rather
// than start and fail every request. Each check is short and bounded; all three run at once.
import { Redis } from 'ioredis';
import pg from 'pg';

import type { SharedServiceSettings } from './scale-out.ts';
import { connectionProblem, redactUrl } from './service-urls.ts';

/** One service that could not be reached. */
export interface ServiceProblem {
  setting: string;
  variable: string;
  message: string;
}

/** Raised by checkServices: one line per service that could not be reached. */
export class ServicesUnreachableError extends Error {
  readonly problems: ServiceProblem[];
  constructor(problems: ServiceProblem[]) {
    super(problems.map((p) => `${p.variable}: ${p.message} (the file's ${p.setting})`).join('\n'));
    this.name = 'ServicesUnreachableError';
    this.problems = problems;
  }
}

export interface CheckServicesOptions {
  /** Longest each service may take to answer (default 5000 ms). */
  timeoutMs?: number;
}

/**
 * Connects to Redis (PING), PostgreSQL (SELECT 1) and the S3 endpoint (any HTTP answer, even an error
 * status, shows it is reachable; the bucket and credentials are the blob store's to check), each within
 * timeoutMs. Resolves when all three answer; rejects with ServicesUnreachableError naming each one that did not.
 */
export async function checkServices(
  settings: SharedServiceSettings,
  options: CheckServicesOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  // The clients' own time limits are a backstop, a little later than the deadline every check shares.
  const clientTimeoutMs = timeoutMs + 1000;
  const s3 = s3Endpoint(settings.s3);
  const checks: [setting: string, variable: string, url: string, check: Check][] = [
    [
      'redis.url',
      'EASEL_REDIS_URL',
      settings.redis.url,
      (signal) => checkRedis(settings.redis.url, clientTimeoutMs, signal),
    ],
    [
      'database.url',
      'EASEL_DATABASE_URL',
      settings.database.url,
      (signal) => checkPostgres(settings.database.url, clientTimeoutMs, signal),
    ],
    ['s3.endpoint', 'EASEL_S3_ENDPOINT', s3, (signal) => checkHttp(s3, signal)],
  ];
  const outcomes = await Promise.allSettled(checks.map(([, , , check]) => withTimeout(check, timeoutMs)));
  const problems = outcomes.flatMap((outcome, i): ServiceProblem[] => {
    if (outcome.status === 'fulfilled') return [];
    const [setting, variable, url] = checks[i]!;
    return [{ setting, variable, message: `cannot reach ${redactUrl(url)}: ${reasonOf(outcome.reason)}` }];
  });
  if (problems.length > 0) throw new ServicesUnreachableError(problems);
}

/** The endpoint the S3 client will use: the configured one, or AWS S3's regional endpoint. */
export function s3Endpoint(s3: SharedServiceSettings['s3']): string {
  return s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`;
}

/** One service's check; `signal` aborts it when it runs out of time, and it then closes what it opened. */
type Check = (signal: AbortSignal) => Promise<void>;

async function checkRedis(url: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  signal.addEventListener('abort', () => redis.disconnect(), { once: true });
  // The socket's own error (connection refused …) says more than connect()'s "Connection is closed"; without
  // a listener ioredis would also print it.
  let socketError: unknown = null;
  redis.on('error', (error) => (socketError ??= error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw (socketError ?? error) as Error;
  } finally {
    redis.disconnect();
  }
}

async function checkPostgres(url: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  // An error after connect (the server going away) would otherwise be an unhandled 'error' event.
  client.on('error', () => undefined);
  const end = () => client.end().catch(() => undefined);
  signal.addEventListener('abort', () => void end(), { once: true });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await end();
  }
}

async function checkHttp(url: string, signal: AbortSignal): Promise<void> {
  const response = await fetch(url, { method: 'HEAD', signal, redirect: 'manual' });
  await response.body?.cancel();
}

/** Runs a check with its deadline: past it, the check is aborted (it closes its connection) and this rejects. */
async function withTimeout(check: Check, ms: number): Promise<void> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CheckTimeout(ms));
      controller.abort();
    }, ms);
  });
  const running = check(controller.signal);
  // Once the deadline has passed, the aborted check's own failure is of no interest.
  running.catch(() => undefined);
  try {
    await Promise.race([running, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

class CheckTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms / 1000} s`);
  }
}

/** Why a check failed: past its deadline, or the client's error in a few words. */
function reasonOf(error: unknown): string {
  return error instanceof CheckTimeout ? error.message : connectionProblem(error);
}
