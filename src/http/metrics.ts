// The operators' metrics, in Prometheus' text format at GET /metrics. One registry per app (never
// prom-client's global one), so several apps in one process (the tests) keep separate counts.
// Labels carry route patterns, methods, status codes, outcomes and operator-configured deployment
// and engine names only: never keys, prompts, raw URLs or anything else a client chose.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';

import type { DeploymentEngine } from '../engines/deployment-engines.ts';
import type { JobOutcome, RunnerMetrics } from '../jobs/runner.ts';

/** Answers take milliseconds (placeholder, polls) to minutes (diffusion on a CPU). */
const LONG_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** One model call: a text encoder in milliseconds, a VAE decode on a CPU in tens of seconds. */
const STAGE_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** How many live workers have a deployment ready, loading and unavailable. */
export interface WorkerCounts {
  ready: number;
  loading: number;
  unavailable: number;
}

export interface MetricsSources {
  deployments: ReadonlyMap<
    string,
    { name: string; engineName: string; runtime: Pick<DeploymentEngine, 'status' | 'model'> }
  >;
  /**
   * Jobs waiting and running, over all deployments (read from the queue, which may be shared); the
   * embedded server and API nodes have it. Without it the queue gauges are left out.
   */
  queueCounts?(): Promise<{ waiting: number; active: number }>;
  /** A worker: the jobs this process runs now (easel_worker_running_jobs). */
  runningHere?(): number;
  /**
   * An API node: live workers per deployment and state, from the worker registry
   * (easel_live_workers; easel_deployment_up is then 1 when some worker has the deployment ready).
   */
  workerCounts?(): Promise<ReadonlyMap<string, WorkerCounts>>;
}

export class Metrics implements RunnerMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'route' | 'method' | 'status_code'>;
  private readonly requestSeconds: Histogram<'route' | 'method' | 'status_code'>;
  private readonly queueWaitSeconds: Histogram;
  private readonly generated: Counter<'deployment' | 'engine'>;
  private readonly filtered: Counter<'deployment'>;
  private readonly stageSeconds: Histogram<'deployment' | 'stage'>;
  private readonly jobSeconds: Histogram<'deployment' | 'outcome'>;

  constructor(registry: Registry, sources: MetricsSources) {
    this.registry = registry;
    const registers = [registry];
    collectDefaultMetrics({ register: registry, prefix: 'easel_' });

    const http = { labelNames: ['route', 'method', 'status_code'] as const, registers };
    this.requests = new Counter({
      name: 'easel_http_requests_total',
      help: 'HTTP requests answered, by route pattern ("unmatched" for unknown paths), method and status code.',
      ...http,
    });
    this.requestSeconds = new Histogram({
      name: 'easel_http_request_duration_seconds',
      help: 'Time from receiving a request to sending its answer.',
      buckets: LONG_BUCKETS_SECONDS,
      ...http,
    });

    // Read at scrape time, so they are never stale.
    const { queueCounts, runningHere } = sources;
    if (queueCounts) {
      new Gauge({
        name: 'easel_queue_waiting_jobs',
        help: 'Generations admitted and waiting for a slot.',
        registers,
        async collect() {
          this.set((await queueCounts()).waiting);
        },
      });
      new Gauge({
        name: 'easel_queue_active_jobs',
        help: 'Generations running.',
        registers,
        async collect() {
          this.set((await queueCounts()).active);
        },
      });
    }
    if (runningHere) {
      new Gauge({
        name: 'easel_worker_running_jobs',
        help: 'Generations running in this worker process.',
        registers,
        collect() {
          this.set(runningHere());
        },
      });
    }
    this.queueWaitSeconds = new Histogram({
      name: 'easel_queue_wait_seconds',
      help: 'Time a generation waited in the queue, from admission to start.',
      buckets: LONG_BUCKETS_SECONDS,
      registers,
    });

    this.generated = new Counter({
      name: 'easel_images_generated_total',
      help: 'Images the engine produced, including those the image filter then blocked.',
      labelNames: ['deployment', 'engine'],
      registers,
    });
    this.filtered = new Counter({
      name: 'easel_images_filtered_total',
      help: 'Images the image filter blocked (never stored or returned).',
      labelNames: ['deployment'],
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'easel_engine_stage_seconds',
      help: 'Time of each model call (unet: one per denoising step), by pipeline stage.',
      labelNames: ['deployment', 'stage'],
      buckets: STAGE_BUCKETS_SECONDS,
      registers,
    });
    this.jobSeconds = new Histogram({
      name: 'easel_job_duration_seconds',
      help: 'Time a generation ran: engine, image filter, encoding and storage.',
      labelNames: ['deployment', 'outcome'],
      buckets: LONG_BUCKETS_SECONDS,
      registers,
    });

    const { deployments } = sources;
    new Gauge({
      name: 'easel_model_load_seconds',
      help: "How long the deployment's diffusion model took to load.",
      labelNames: ['deployment'],
      registers,
      collect() {
        this.reset();
        for (const d of deployments.values())
          if (d.runtime.model) this.set({ deployment: d.name }, d.runtime.model.loadMs / 1000);
      },
    });
    const { workerCounts } = sources;
    new Gauge({
      name: 'easel_deployment_up',
      help: '1 when the deployment can serve (an API node: some live worker has it ready), 0 while its model loads or when it is unavailable.',
      labelNames: ['deployment', 'engine'],
      registers,
      async collect() {
        const counts = workerCounts ? await workerCounts().catch(() => new Map<string, WorkerCounts>()) : null;
        this.reset();
        for (const d of deployments.values()) {
          const up = counts ? (counts.get(d.name)?.ready ?? 0) > 0 : d.runtime.status === 'ready';
          this.set({ deployment: d.name, engine: d.engineName }, up ? 1 : 0);
        }
      },
    });
    if (workerCounts) {
      new Gauge({
        name: 'easel_live_workers',
        help: 'Live workers that have the deployment in each state (ready, loading, unavailable), from the worker registry.',
        labelNames: ['deployment', 'state'],
        registers,
        async collect() {
          // Redis away: no series rather than a failed scrape (easel_deployment_up then reads 0).
          const counts = await workerCounts().catch(() => null);
          this.reset();
          if (!counts) return;
          for (const d of deployments.values()) {
            const c = counts.get(d.name) ?? { ready: 0, loading: 0, unavailable: 0 };
            for (const state of ['ready', 'loading', 'unavailable'] as const)
              this.set({ deployment: d.name, state }, c[state]);
          }
        },
      });
    }
  }

  /** Fastify onResponse hook. The route pattern, not the URL, so ids and query strings add no series. */
  readonly onResponse = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const labels = {
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status_code: String(reply.statusCode),
    };
    this.requests.inc(labels);
    this.requestSeconds.observe(labels, reply.elapsedTime / 1000);
  };

  queueWait(waitedMs: number): void {
    this.queueWaitSeconds.observe(waitedMs / 1000);
  }

  imagesGenerated(
    deployment: string,
    engine: string,
    count: number,
    stageTimings: Partial<Record<string, number[]>> | undefined,
  ): void {
    this.generated.inc({ deployment, engine }, count);
    for (const [stage, runs] of Object.entries(stageTimings ?? {})) {
      for (const ms of runs ?? []) this.stageSeconds.observe({ deployment, stage }, ms / 1000);
    }
  }

  imageFiltered(deployment: string): void {
    this.filtered.inc({ deployment });
  }

  jobFinished(deployment: string, outcome: JobOutcome, seconds: number): void {
    this.jobSeconds.observe({ deployment, outcome }, seconds);
  }
}
