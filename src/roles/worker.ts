// `easel worker`: a generation worker of a scale-out deployment (docs/scale-out.md, "Running it"). It
// loads the engines of its deployments, takes their jobs from the queue on Redis, runs them (engine,
// image filter, encoding, images to S3, DALL-E 2 operation states to PostgreSQL) and announces its
// deployments' readiness in the worker registry. Its own small HTTP server answers /healthz, /readyz
// and /metrics.
import { hostname } from 'node:os';

import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';

import { checkServices } from '../config/check-services.ts';
import type { Config } from '../config/index.ts';
import { scaleOutSettings, type WorkerSettings } from '../config/scale-out.ts';
import { createDeploymentEngines } from '../engines/deployment-engines.ts';
import { Metrics } from '../http/metrics.ts';
import { buildWorkerServer } from '../http/worker-server.ts';
import { BullmqConsumer } from '../jobs/bullmq-consumer.ts';
import type { JobProcessor } from '../jobs/job-contract.ts';
import { Operations } from '../jobs/operations.ts';
import { createRunner } from '../jobs/runner.ts';
import { newWorkerId, startHeartbeat, type WorkerAnnouncement } from '../jobs/worker-registry.ts';
import { type AppOptions, closeServer, deploymentMap, jobGraceSeconds, openNodeServices } from './common.ts';

/** The worker's HTTP port when PORT is not set (the API's default is 8080). */
export const DEFAULT_WORKER_PORT = 8081;

export interface WorkerOptions extends Pick<AppOptions, 'logger' | 'imageFilter' | 'engine'> {
  /** Serve only these of the configured deployments (default: all of them). */
  deployments?: readonly string[];
  /** The port it will listen on, announced in the registry (null: unknown yet). */
  port?: number | null;
  /** How long each service may take to answer the start-up check (default 5000 ms). */
  servicesTimeoutMs?: number;
}

export interface Worker {
  /** Its id in the worker registry (host, process and a random part). */
  id: string;
  /** The deployments it was given (it takes jobs of those whose model loaded). */
  deployments: string[];
  /** /healthz, /readyz and /metrics; the caller listens. */
  server: FastifyInstance;
  /** Settles when every diffusion model has loaded or been marked unavailable. */
  modelsLoaded: Promise<void>;
  /** Jobs running in this process now. */
  running(): number;
  /**
   * Stops taking jobs and withdraws from the registry at once (API nodes stop counting it), gives
   * running jobs the shutdown grace (then aborts them: each goes back to the queue when another worker
   * serves its deployment, else fails with 503), then closes everything.
   */
  close(): Promise<void>;
}

/**
 * The settings the worker role needs (ConfigError naming the missing ones), a check that Redis,
 * PostgreSQL and S3 answer (ServicesUnreachableError), then the worker. Models load in the
 * background (announced as loading meanwhile); once they have, it takes the jobs of the deployments
 * that can serve and announces them ready.
 */
export async function createWorker(config: Config, options: WorkerOptions): Promise<Worker> {
  const settings = scaleOutSettings(config, 'worker');
  const served = servedDeployments(config, options.deployments);
  await checkServices(settings, { timeoutMs: options.servicesTimeoutMs });
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    return await compose({ ...config, deployments: served }, settings, options, cleanUp);
  } catch (error) {
    for (const close of cleanUp.reverse()) await close().catch(() => undefined);
    options.logger.error({ err: error }, 'the worker could not start');
    throw error;
  }
}

/** The configured deployments a worker serves; an unknown name in `only` is an error naming the known ones. */
export function servedDeployments(config: Config, only: readonly string[] | undefined): Config['deployments'] {
  if (!only) return config.deployments;
  const known = config.deployments.map((d) => d.name);
  const unknown = only.filter((name) => !known.includes(name));
  if (unknown.length > 0)
    throw new UnknownDeploymentError(`no such deployment: ${unknown.join(', ')} (configured: ${known.join(', ')})`);
  if (only.length === 0) throw new UnknownDeploymentError(`no deployment named (configured: ${known.join(', ')})`);
  return config.deployments.filter((d) => only.includes(d.name));
}

export class UnknownDeploymentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownDeploymentError';
  }
}

async function compose(
  config: Config,
  settings: WorkerSettings,
  options: WorkerOptions,
  cleanUp: (() => Promise<unknown>)[],
): Promise<Worker> {
  const log = options.logger;
  const id = newWorkerId();
  const { safety, store, blobs, registry } = await openNodeServices(config, settings, options, cleanUp);
  const engines = createDeploymentEngines(config, log, options.engine);
  cleanUp.push(() => engines.close());
  const deployments = deploymentMap(config.deployments, (d) => engines.get(d.name));

  let consumer: BullmqConsumer | null = null;
  const metrics = new Metrics(new Registry(), { deployments, runningHere: () => consumer?.running() ?? 0 });
  consumer = new BullmqConsumer({
    redis: settings.redis.url,
    concurrency: config.queue.concurrency,
    jobTimeoutSeconds: config.queue.jobTimeoutSeconds,
    lockDurationMs: settings.queue.lockSeconds * 1000,
    stalledIntervalMs: settings.queue.stalledCheckSeconds * 1000,
    attempts: settings.queue.attempts,
    onStart: (job) => metrics.queueWait(job.waitedMs),
    onError: (error, context) => log.warn({ err: error.message, context }, 'job queue'),
  });
  const running = consumer;
  cleanUp.push(() => running.close());
  const runner = createRunner({
    engineFor: (deployment) => engines.get(deployment).engine,
    imageFilter: safety.imageFilter,
    store,
    blobs,
    imageUrlTtlSeconds: config.imageUrlTtlSeconds,
    metrics,
    log,
  });
  // Only runJob is used here: operations are submitted (and their lost jobs ended) by the API nodes.
  const operations = new Operations({
    store,
    blobs,
    queue: { add: notHere, counts: notHere, retryAfterSeconds: notHere, close: () => Promise.resolve() },
    ttlSeconds: config.imageUrlTtlSeconds,
    log,
  });
  const names = [...deployments.keys()];
  const processor: JobProcessor = (data, context) =>
    data.operationId === null
      ? runner(data, context)
      : operations.runJob(data.operationId, context.signal, () => runner(data, context), context.attempt);

  const describe = (): WorkerAnnouncement => ({
    id,
    host: hostname(),
    pid: process.pid,
    port: options.port ?? null,
    deployments: [...deployments.values()].map((d) => ({
      name: d.name,
      ready: d.runtime.status === 'ready',
      ...(d.runtime.status === 'unavailable' ? { reason: d.runtime.reason ?? 'unavailable' } : {}),
    })),
  });
  const heartbeat = startHeartbeat({
    announcer: registry,
    intervalSeconds: settings.workers.heartbeatSeconds,
    describe,
    onError: (error) => log.warn({ err: error }, 'worker heartbeat failed; the next one tries again'),
  });
  cleanUp.push(() => heartbeat.stop());
  // Jobs are taken once the models have loaded, and only for the deployments that can serve: a
  // deployment whose model failed to load would fail every job this worker took, which another
  // worker could run. Then announced at once, not only at the next beat.
  let closing = false;
  void engines.loaded
    .then(() => {
      if (closing) return;
      const ready = names.filter((name) => deployments.get(name)?.runtime.status === 'ready');
      if (ready.length === 0) log.error({ worker: id }, 'no deployment of this worker can serve; it takes no jobs');
      else {
        running.process(ready, processor);
        log.info({ worker: id, deployments: ready }, `worker ${id} takes jobs of ${ready.join(', ')}`);
      }
      registry.announce(describe()).catch(() => undefined);
    })
    .catch((error: unknown) => log.error({ err: error }, 'the worker could not start taking jobs'));

  const server = buildWorkerServer({
    logger: log,
    workerId: id,
    deployments,
    running: () => running.running(),
    metrics,
  });

  return {
    id,
    deployments: names,
    server,
    modelsLoaded: engines.loaded,
    running: () => running.running(),
    async close() {
      closing = true;
      await closeServer(server, async () => {
        // Withdrawn first: API nodes stop admitting to this worker while its jobs finish.
        await Promise.all([heartbeat.stop(), running.close({ graceSeconds: jobGraceSeconds(config) })]);
        await operations.close();
      });
      await engines.close();
      await safety.close();
      await registry.close();
      await store.close();
    },
  };
}

function notHere(): never {
  throw new Error('a worker does not admit jobs');
}
