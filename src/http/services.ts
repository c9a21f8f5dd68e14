import type { Config, DeploymentConfig } from '../config/index.ts';
import type { Family } from '../contract/families.ts';
import type { DeploymentEngine } from '../engines/deployment-engines.ts';
import type { JobProducer } from '../jobs/job-contract.ts';
import type { OperationStore } from '../jobs/operation-store.ts';
import type { Operations } from '../jobs/operations.ts';
import type { PixelBudget } from '../jobs/pixel-budget.ts';
import type { ClassifierState } from '../safety/from-config.ts';
import type { ImageFilter } from '../safety/image-filter.ts';
import type { PromptFilter } from '../safety/prompt-filter.ts';
import type { BlobStore, ImageLinks, UrlSigner } from '../storage/index.ts';
import type { Metrics } from './metrics.ts';
import type { WorkerGate } from './worker-gate.ts';

export type Deployment = DeploymentConfig & {
  family: Family;
  /** Its engine and the live state of its model (loading, ready, or unavailable with a reason). */
  runtime: DeploymentEngine;
  engineName: string;
};

/** Everything the handlers use; chosen once at start-up (src/app.ts) and decorated on Fastify. */
export interface Services {
  config: Config;
  deployments: ReadonlyMap<string, Deployment>;
  isValidKey(key: string | null): boolean;
  promptFilter: PromptFilter;
  /** The image filter (the runner also checks streamed partial images with it). */
  imageFilter: ImageFilter;
  /** Each configured prompt classifier's state, for /readyz. */
  classifierStates(): Record<string, ClassifierState>;
  /** Where requests are admitted as jobs; the jobs may run in this process or another one. */
  queue: JobProducer;
  /** Decoded pixels of edits, per request and in flight (limits.maxEditPixels, limits.maxPixelsInFlight). */
  pixelBudget: PixelBudget;
  operations: Operations;
  store: OperationStore;
  blobs: BlobStore;
  /** Verifies the signed /files/ links. */
  signer: UrlSigner;
  /** The URL a client gets for a stored image: a signed /files/ link, or a presigned bucket URL. */
  imageLinks: ImageLinks;
  /**
   * Scale-out API nodes: the live workers per deployment, asked at admission (503 noLiveWorker when
   * none has the deployment ready) and by /readyz. Null in embedded mode, where this process runs the jobs.
   */
  workers: WorkerGate | null;
  /** The app's own Prometheus registry and the counters fed by requests and jobs (GET /metrics). */
  metrics: Metrics;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}
