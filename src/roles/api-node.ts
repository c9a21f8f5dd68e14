// `easel serve --role api`: an API node of a scale-out deployment (docs/scale-out.md, "Running it").
// It validates, admits jobs to the queue on Redis, streams answers and serves images; it loads no
// models and holds no data directory. Operations live in PostgreSQL and image bytes in S3, so any
// node answers any request; the worker registry tells it which deployments some worker can serve.
import { Registry } from 'prom-client';

import { checkServices } from '../config/check-services.ts';
import type { Config } from '../config/index.ts';
import { type ApiNodeSettings, scaleOutSettings } from '../config/scale-out.ts';
import { createKeyCheck } from '../http/auth.ts';
import { Metrics } from '../http/metrics.ts';
import { buildServer } from '../http/server.ts';
import type { Services } from '../http/services.ts';
import { DEFAULT_WORKER_CACHE_MS, WorkerGate } from '../http/worker-gate.ts';
import { BullmqProducer } from '../jobs/bullmq-queue.ts';
import { OperationReconciler } from '../jobs/operation-reconciler.ts';
import { Operations } from '../jobs/operations.ts';
import { PixelBudget } from '../jobs/pixel-budget.ts';
import { PresignedImageLinks, SignedFileLinks, Sweeper, UrlSigner } from '../storage/index.ts';
import {
  type App,
  type AppOptions,
  closeServer,
  deploymentMap,
  jobGraceSeconds,
  openNodeServices,
  remoteRuntime,
} from './common.ts';

export interface ApiNodeOptions extends Pick<AppOptions, 'logger' | 'imageFilter' | 'imageLinks'> {
  /** How long each service may take to answer the start-up check (default 5000 ms). */
  servicesTimeoutMs?: number;
  /** How long one read of the worker registry answers admission for (default 1000 ms). */
  workerCacheMs?: number;
  /** How often open operations are checked against their jobs (default 30 s; see OperationReconciler). */
  reconcileIntervalSeconds?: number;
}

/**
 * The settings the api role needs (ConfigError naming the missing ones), then a check that Redis,
 * PostgreSQL and S3 answer (ServicesUnreachableError naming the unreachable ones), then the node.
 */
export async function createApiNode(config: Config, options: ApiNodeOptions): Promise<App> {
  const settings = scaleOutSettings(config, 'api');
  await checkServices(settings, { timeoutMs: options.servicesTimeoutMs });
  const log = options.logger;
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    return await compose(config, settings, options, cleanUp);
  } catch (error) {
    for (const close of cleanUp.reverse()) await close().catch(() => undefined);
    log.error({ err: error }, 'the API node could not start');
    throw error;
  }
}

async function compose(
  config: Config,
  settings: ApiNodeSettings,
  options: ApiNodeOptions,
  cleanUp: (() => Promise<unknown>)[],
): Promise<App> {
  const log = options.logger;
  const { safety, store, blobs, registry } = await openNodeServices(config, settings, options, cleanUp);
  const producer = new BullmqProducer({
    redis: settings.redis.url,
    maxWaiting: config.queue.maxWaiting,
    onError: (error, context) => log.warn({ err: error.message, context }, 'job queue'),
  });
  cleanUp.push(() => producer.close());

  const signer = new UrlSigner(Buffer.from(settings.signingSecret, 'utf8'));
  const imageLinks =
    options.imageLinks ??
    (settings.s3.presignedUrls ? await PresignedImageLinks.of(blobs) : new SignedFileLinks(signer));
  const deployments = deploymentMap(config.deployments, remoteRuntime);
  const workers = new WorkerGate(registry, { cacheMs: options.workerCacheMs ?? DEFAULT_WORKER_CACHE_MS });
  const metrics = new Metrics(new Registry(), {
    deployments,
    workerCounts: async () => (await workers.live()).perDeployment,
    queueCounts: async () => {
      let waiting = 0;
      let active = 0;
      for (const name of deployments.keys()) {
        const counts = await producer.counts(name);
        waiting += counts.waiting;
        active += counts.active;
      }
      return { waiting, active };
    },
  });
  // The queue keeps operations' jobs across restarts: no recover() here; lost jobs end their operations.
  const operations = new Operations({
    store,
    blobs,
    queue: producer,
    ttlSeconds: config.imageUrlTtlSeconds,
    log,
    settleLostJobs: true,
  });
  const services: Services = {
    config,
    deployments,
    isValidKey: createKeyCheck(settings.apiKeys),
    promptFilter: safety.promptFilter,
    imageFilter: safety.imageFilter,
    classifierStates: safety.classifierStates,
    queue: producer,
    pixelBudget: new PixelBudget(config.limits.maxEditPixels, config.limits.maxPixelsInFlight),
    operations,
    store,
    blobs,
    signer,
    imageLinks,
    metrics,
    workers,
  };
  const server = await buildServer(services, { logger: log });

  // Every API node runs both; the PostgreSQL lease lets one node at a time sweep, and the
  // reconciler's moves are compare-and-sets, so nodes never undo one another's work.
  const sweeper = new Sweeper({ store, blobs, intervalSeconds: config.sweepIntervalSeconds, log });
  sweeper.start();
  const { lockSeconds, stalledCheckSeconds } = settings.queue;
  const reconciler = new OperationReconciler({
    store,
    jobState: (deployment, id) => producer.jobState(deployment, id),
    // Past a dead worker's hand-over (lock + two stall checks) and an admission's 30 s reservation.
    graceSeconds: lockSeconds + 2 * stalledCheckSeconds + 30,
    intervalSeconds: options.reconcileIntervalSeconds ?? 30,
    log,
  });
  reconciler.start();

  return {
    server,
    services,
    apiKeys: { keys: settings.apiKeys, source: 'EASEL_API_KEYS', generated: null },
    modelsLoaded: Promise.resolve(),
    listening: () => undefined,
    async close() {
      // Sync jobs this node waits for get the grace period, then their clients get 503 and the jobs are
      // cancelled; operations' jobs run on (any node answers their polls).
      await closeServer(server, async () => {
        await producer.close({ graceSeconds: jobGraceSeconds(config) });
        await operations.close();
      });
      await reconciler.stop();
      await sweeper.stop();
      await registry.close();
      await safety.close();
      await store.close();
    },
  };
}
