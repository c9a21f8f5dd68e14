import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { Registry } from 'prom-client';

import type { Config } from './config/index.ts';
import { resolveApiKeys, saveGeneratedKey } from './config/keys.ts';
import { createDeploymentEngines } from './engines/deployment-engines.ts';
import { createKeyCheck } from './http/auth.ts';
import { Metrics } from './http/metrics.ts';
import { buildServer } from './http/server.ts';
import type { Services } from './http/services.ts';
import { InProcessQueue } from './jobs/in-process-queue.ts';
import { Operations } from './jobs/operations.ts';
import { PixelBudget } from './jobs/pixel-budget.ts';
import { createRunner } from './jobs/runner.ts';
import { SqliteOperationStore } from './jobs/sqlite-operation-store.ts';
import { type App, type AppOptions, closeServer, deploymentMap, jobGraceSeconds } from './roles/common.ts';
import { createSafety } from './safety/from-config.ts';
import { DataDirLock, FsBlobStore, loadOrCreateSecret, SignedFileLinks, Sweeper, UrlSigner } from './storage/index.ts';

export { type ApiNodeOptions, createApiNode } from './roles/api-node.ts';
export type { App, AppOptions } from './roles/common.ts';
export { createWorker, DEFAULT_WORKER_PORT, type Worker, type WorkerOptions } from './roles/worker.ts';

/**
 * The composition root: every concrete adapter is chosen here, once, from the configuration. Three
 * roles (docs/scale-out.md, "Running it"): the embedded server below (`easel serve`, the default:
 * SQLite and files in the data directory, an in-process queue), an API node (`easel serve --role
 * api`, roles/api-node.ts) and a generation worker (`easel worker`, roles/worker.ts); roles/common.ts
 * holds what they share.
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
  const deployments = deploymentMap(config.deployments, (d) => engines.get(d.name));

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
    workers: null,
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
      // Jobs still waiting are refused at once (their clients get 503 and retry elsewhere); running
      // ones get the grace period, then are aborted (503 too). DALL-E 2 operations cut short run again
      // after the next start.
      await closeServer(server, async () => {
        await queue.close({ graceSeconds: jobGraceSeconds(config) });
        await operations.close();
      });
      await sweeper.stop();
      await engines.close();
      await safety.close();
      await store.close();
      lock.release();
    },
  };
}
