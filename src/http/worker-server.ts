// A generation worker's own small HTTP server (easel worker): no API, only what operators and their
// orchestrators ask of a process. GET /healthz (alive), GET /readyz (its deployments' engine states),
// GET /metrics (Prometheus: jobs, stage timings, queue wait, running jobs). No keys: it belongs on the
// operators' network, like the API nodes' /metrics.
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';

import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

import type { DeploymentEngine } from '../engines/deployment-engines.ts';
import type { Metrics } from './metrics.ts';

export interface WorkerServerDeps {
  logger: FastifyBaseLogger;
  /** The worker's id, as it announces itself in the registry. */
  workerId: string;
  deployments: ReadonlyMap<string, { name: string; model: string; engineName: string; runtime: DeploymentEngine }>;
  /** Jobs this process runs now. */
  running(): number;
  metrics: Metrics;
}

export function buildWorkerServer(deps: WorkerServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'worker-http' }),
    genReqId: () => randomUUID(),
  });
  app.addHook('onResponse', deps.metrics.onResponse);
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const list = [...deps.deployments.values()];
    const states = Object.fromEntries(
      list.map((d) => {
        const { status, reason, model } = d.runtime;
        return [
          d.name,
          {
            model: d.model,
            engine: d.engineName,
            status,
            ...(reason ? { reason } : {}),
            ...(model ? { family: model.family, folder: basename(model.folder) } : {}),
          },
        ];
      }),
    );
    // Ready once no model is still loading and at least one deployment can take jobs (as the server).
    const loading = list.some((d) => d.runtime.status === 'loading');
    const serving = list.some((d) => d.runtime.status === 'ready');
    const status = loading ? 'loading' : serving ? 'ready' : 'not ready';
    return reply
      .code(status === 'ready' ? 200 : 503)
      .send({ status, worker: deps.workerId, running: deps.running(), deployments: states });
  });
  app.get('/metrics', async (_request, reply) => {
    const { registry } = deps.metrics;
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
  return app;
}
