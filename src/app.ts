import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';

import type { Config } from './config/index.ts';
import { type ApiKeys, resolveApiKeys, saveGeneratedKey } from './config/keys.ts';
import { FAMILIES } from './contract/families.ts';
import { createDeploymentEngines } from './engines/deployment-engines.ts';
import type { Engine } from './engines/engine.ts';
import { createKeyCheck } from './http/auth.ts';
import { Metrics } from './http/metrics.ts';
import { buildServer } from './http/server.ts';
import type { Deployment, Services } from './http/services.ts';
import { InProcessQueue } from './jobs/in-process-queue.ts';
import { Operations } from './jobs/operations.ts';
import { PixelBudget } from './jobs/pixel-budget.ts';
import { createRunner } from './jobs/runner.ts';
import { SqliteOperationStore } from './jobs/sqlite-operation-store.ts';
import { createSafety } from './safety/from-config.ts';
import type { ImageFilter } from './safety/index.ts';
import {
  type BlobStore,
  DataDirLock,
  FsBlobStore,
  type ImageLinks,
  loadOrCreateSecret,
  SignedFileLinks,
  Sweeper,
  UrlSigner,
} from './storage/index.ts';

export interface App {
  server: FastifyInstance;
  services: Services;
  apiKeys: ApiKeys;
  /** Settles when every diffusion model has loaded or been marked unavailable. */
  modelsLoaded: Promise<void>;
  /**
   * Call once the server listens on `url` (a client's address of it): saves a newly generated key
   * (only now, so a start that fails never keeps a key it did not show) and records the URL beside
   * the data-directory lock, where `easel generate` finds the running server.
   */
  listening(url: string): void;
  /**
   * Stop accepting, answer waiting jobs 503, let running jobs finish within the shutdown grace period
   * (then abort them), close the database (docs/lifecycle.md, "Shutdown").
   */
  close(): Promise<void>;
}

export interface AppOptions {
  logger: FastifyBaseLogger;
  /** Replace the image filter (tests use one that blocks). */
  imageFilter?: ImageFilter;
  /** Replace the engine of every deployment (tests use slow or failing engines). */
  engine?: Engine;
  /** Replace the image byte store (tests use one that fails as a full or read-only disk does). */
  blobs?: BlobStore;
  /** Replace the image links (default: signed /files/ links; PresignedImageLinks with an S3 store). */
  imageLinks?: ImageLinks;
}

/**
 * The composition root: every concrete adapter is chosen here, once, from the configuration.
 * Embedded defaults: SQLite and files in the data directory, an in-process queue.
 */
export async function createApp(config: Config, options: AppOptions): Promise<App> {
  const log = options.logger;
  // First, so a bad blocklist stops the start before anything is held.
  const safety = createSafety(config, log, options);
  mkdirSync(config.dataDir, { recursive: true });
  let lock: DataDirLock;
  try {
    lock = DataDirLock.acquire(config.dataDir);
  } catch (error) {
    await safety.close(); // its file watchers and classifier threads would keep the process alive
    throw error;
  }
  const apiKeys = resolveApiKeys(config.apiKeys, config.dataDir);
  const store = new SqliteOperationStore(join(config.dataDir, 'easel.db'));
  const blobs = options.blobs ?? new FsBlobStore(join(config.dataDir, 'blobs'));
  const signer = new UrlSigner(loadOrCreateSecret(config.dataDir));

  const engines = createDeploymentEngines(config, log, options.engine);
  const deployments = new Map<string, Deployment>(
    config.deployments.map((d) => {
      const runtime = engines.get(d.name);
      return [d.name, { ...d, family: FAMILIES[d.model], runtime, engineName: runtime.engine.name }];
    }),
  );

  // The app's own registry, not prom-client's global one: apps in one process count separately.
  const metrics = new Metrics(new Registry(), { deployments, queueCounts: () => totalCounts() });
  // Embedded: one in-process queue is both the producer (admission) and the consumer (the runner),
  // through the same job contract a queue between processes uses (docs/scale-out.md).
  const queue = new InProcessQueue({
    concurrency: config.queue.concurrency,
    maxWaiting: config.queue.maxWaiting,
    jobTimeoutSeconds: config.queue.jobTimeoutSeconds,
    onStart: (job) => metrics.queueWait(job.waitedMs),
  });
  const runner = createRunner({
    engineFor: (deployment) => engines.get(deployment).engine,
    imageFilter: safety.imageFilter,
    store,
    blobs,
    imageUrlTtlSeconds: config.imageUrlTtlSeconds,
    metrics,
    log,
  });
  const operations = new Operations({ store, blobs, queue, ttlSeconds: config.imageUrlTtlSeconds, log });
  const totalCounts = async () => {
    let waiting = 0;
    let active = 0;
    for (const name of deployments.keys()) {
      const counts = await queue.counts(name);
      waiting += counts.waiting;
      active += counts.active;
    }
    return { waiting, active };
  };
  queue.process([...deployments.keys()], (data, context) =>
    data.operationId === null
      ? runner(data, context)
      : operations.runJob(data.operationId, context.signal, () => runner(data, context)),
  );

  const services: Services = {
    config,
    deployments,
    isValidKey: createKeyCheck(apiKeys.keys),
    promptFilter: safety.promptFilter,
    imageFilter: safety.imageFilter,
    classifierStates: safety.classifierStates,
    queue,
    pixelBudget: new PixelBudget(config.limits.maxEditPixels, config.limits.maxPixelsInFlight),
    operations,
    store,
    blobs,
    signer,
    imageLinks: options.imageLinks ?? new SignedFileLinks(signer),
    metrics,
  };
  const server = await buildServer(services, { logger: log });

  const recovered = await operations.recover();
  if (recovered.resumed + recovered.failed > 0) log.info(recovered, 'operations recovered after restart');
  const sweeper = new Sweeper({ store, blobs, intervalSeconds: config.sweepIntervalSeconds, log });
  sweeper.start();

  return {
    server,
    services,
    apiKeys,
    modelsLoaded: engines.loaded,
    listening(url) {
      if (apiKeys.generated) saveGeneratedKey(config.dataDir, apiKeys.generated);
      lock.recordUrl(url);
    },
    async close() {
      // Stop accepting connections first; requests already in flight are answered below. A
      // keep-alive connection that goes idle after its answer would hold the close open, and Node
      // closes only those idle when close() is called: close the others as they go idle.
      const closing = server.close();
      const closeIdle = setInterval(() => server.server.closeIdleConnections(), 50);
      // Jobs still waiting are refused at once (their clients get 503 and retry elsewhere); running
      // ones get the grace period less a second kept for closing everything else, then are aborted
      // (503 too). DALL-E 2 operations cut short run again after the next start.
      try {
        const grace = config.queue.shutdownGraceSeconds;
        await queue.close({ graceSeconds: Math.max(0, grace - Math.min(1, grace / 5)) });
        await operations.close();
        await closing;
      } finally {
        clearInterval(closeIdle);
      }
      await sweeper.stop();
      await engines.close();
      await safety.close();
      await store.close();
      lock.release();
    },
  };
}
