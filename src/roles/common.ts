// What the compositions of the three roles share (src/app.ts is their root): the deployments as the
// HTTP layer sees them, the orderly close of a Fastify server, the shutdown grace kept for running
// jobs, and opening the shared services of a scale-out node with a message that names the setting.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

import { type ServiceProblem, ServicesUnreachableError } from '../config/check-services.ts';
import type { Config, DeploymentConfig } from '../config/index.ts';
import type { ApiKeys } from '../config/keys.ts';
import type { SharedServiceSettings } from '../config/scale-out.ts';
import { connectionProblem } from '../config/service-urls.ts';
import { FAMILIES } from '../contract/families.ts';
import type { DeploymentEngine } from '../engines/deployment-engines.ts';
import type { Engine } from '../engines/engine.ts';
import type { Deployment, Services } from '../http/services.ts';
import { PostgresOperationStore } from '../jobs/postgres-operation-store.ts';
import { RedisWorkerRegistry } from '../jobs/worker-registry.ts';
import { createSafety, type Safety } from '../safety/from-config.ts';
import type { ImageFilter } from '../safety/index.ts';
import { type BlobStore, type ImageLinks, openS3BlobStore, type S3BlobStore } from '../storage/index.ts';

/** A server that answers the API: the embedded one (`easel serve`) or an API node (`--role api`). */
export interface App {
  server: FastifyInstance;
  services: Services;
  apiKeys: ApiKeys;
  /** Settles when every diffusion model has loaded or been marked unavailable (at once on an API node). */
  modelsLoaded: Promise<void>;
  /**
   * Call once the server listens on `url` (a client's address of it): saves a newly generated key
   * (only now, so a start that fails never keeps a key it did not show) and records the URL beside
   * the data-directory lock, where `easel generate` finds the running server. Nothing on an API node.
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

/** The configured deployments with their engine and its state, as handlers and metrics see them. */
export function deploymentMap(
  deployments: readonly DeploymentConfig[],
  runtimeOf: (d: DeploymentConfig) => DeploymentEngine,
): Map<string, Deployment> {
  return new Map(
    deployments.map((d) => {
      const runtime = runtimeOf(d);
      return [d.name, { ...d, family: FAMILIES[d.model], runtime, engineName: runtime.engine.name }];
    }),
  );
}

/**
 * An API node's stand-in for a deployment's engine: the models run on the workers, so the node has
 * none to load and none to call. It counts as ready (whether a worker can serve is the worker
 * registry's answer, asked at admission); its name is the configured engine kind.
 */
export function remoteRuntime(d: DeploymentConfig): DeploymentEngine {
  const engine: Engine = {
    name: d.engine,
    run: () => Promise.reject(new Error(`deployment ${d.name} runs on the workers, not on an API node`)),
  };
  return { engine, status: 'ready', reason: null, model: null };
}

/** The grace for running jobs at shutdown: the configured period less a second kept for closing the rest. */
export function jobGraceSeconds(config: Config): number {
  const grace = config.queue.shutdownGraceSeconds;
  return Math.max(0, grace - Math.min(1, grace / 5));
}

/**
 * Stops accepting connections, runs `drain` (the jobs' grace), then waits for the requests still in
 * flight. A keep-alive connection that goes idle after its answer would hold the close open, and
 * Node closes only those idle when close() is called: close the others as they go idle.
 */
export async function closeServer(server: FastifyInstance, drain: () => Promise<void>): Promise<void> {
  const closing = server.close();
  const closeIdle = setInterval(() => server.server.closeIdleConnections(), 50);
  try {
    await drain();
    await closing;
  } finally {
    clearInterval(closeIdle);
  }
}

/**
 * What both scale-out roles open first, in this order, each put on `cleanUp` as it opens (a start
 * that fails later closes them): the safety filters, the shared stores and the worker registry.
 */
export async function openNodeServices(
  config: Config,
  settings: SharedServiceSettings,
  options: Pick<AppOptions, 'logger' | 'imageFilter'>,
  cleanUp: (() => Promise<unknown>)[],
): Promise<SharedStores & { safety: Safety; registry: RedisWorkerRegistry }> {
  const log = options.logger;
  const safety = createSafety(config, log, options);
  cleanUp.push(() => safety.close());
  const { store, blobs } = await openSharedStores(settings, (error) =>
    log.warn({ err: error }, 'PostgreSQL: an idle connection failed'),
  );
  cleanUp.push(() => store.close());
  const registry = await RedisWorkerRegistry.open({
    url: settings.redis.url,
    deadAfterSeconds: settings.workers.deadAfterSeconds,
  });
  cleanUp.push(() => registry.close());
  return { safety, store, blobs, registry };
}

/** The operation store and the image bucket of a scale-out node, opened together. */
export interface SharedStores {
  store: PostgresOperationStore;
  blobs: S3BlobStore;
}

/**
 * Opens PostgreSQL (running migrations) and the S3 bucket (checking the credentials, creating it
 * when missing). A failure is a ServicesUnreachableError naming the setting, as checkServices reports
 * one, and closes what was opened.
 */
async function openSharedStores(
  settings: SharedServiceSettings,
  onIdleError: (error: Error) => void,
): Promise<SharedStores> {
  const [store, blobs] = await Promise.allSettled([
    PostgresOperationStore.open({
      connectionString: settings.database.url,
      ...(settings.database.schema ? { schema: settings.database.schema } : {}),
      onIdleError,
    }),
    openS3BlobStore({
      bucket: settings.s3.bucket,
      region: settings.s3.region,
      forcePathStyle: settings.s3.forcePathStyle,
      ...(settings.s3.endpoint ? { endpoint: settings.s3.endpoint } : {}),
    }),
  ]);
  if (store.status === 'fulfilled' && blobs.status === 'fulfilled') return { store: store.value, blobs: blobs.value };
  if (store.status === 'fulfilled') await store.value.close();
  const problems: ServiceProblem[] = [];
  if (store.status === 'rejected')
    problems.push({
      setting: 'database.url',
      variable: 'EASEL_DATABASE_URL',
      message: `cannot open the operation store: ${connectionProblem(store.reason)}`,
    });
  if (blobs.status === 'rejected')
    problems.push({
      setting: 's3.bucket',
      variable: 'EASEL_S3_BUCKET',
      message: `cannot open the image bucket: ${(blobs.reason as Error).message}`,
    });
  throw new ServicesUnreachableError(problems);
}
