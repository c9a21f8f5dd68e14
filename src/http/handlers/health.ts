import { access, constants } from 'node:fs/promises';
import { basename } from 'node:path';

import type { FastifyReply, FastifyRequest } from 'fastify';

/** GET /healthz: the process is alive and its event loop answers. */
export async function healthz(_request: FastifyRequest, reply: FastifyReply) {
  return reply.send({ status: 'ok' });
}

/**
 * GET /readyz: 200 once no model is still loading, storage is writable and at least one deployment
 * can serve; 503 otherwise. The body gives each deployment's state and, for an unavailable one, the
 * reason, and each prompt classifier's state (one that failed to load leaves the service ready:
 * its failure policy decides each prompt). No keys, prompts or full paths.
 */
export async function readyz(request: FastifyRequest, reply: FastifyReply) {
  if (request.server.services.workers) return apiNodeReadyz(request, reply);
  const { deployments, config, classifierStates } = request.server.services;
  let storage = 'ok';
  try {
    await access(config.dataDir, constants.W_OK);
  } catch (error) {
    storage = `not writable: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  const states = Object.fromEntries(
    [...deployments.values()].map((d) => {
      const { status, reason, model } = d.runtime;
      return [
        d.name,
        {
          model: d.model,
          engine: d.engineName,
          status,
          ...(reason ? { reason } : {}),
          ...(model
            ? {
                family: model.family,
                inpainting: model.inpainting,
                resolution: model.nativeResolution,
                folder: basename(model.folder),
              }
            : {}),
        },
      ];
    }),
  );
  const list = [...deployments.values()];
  const loading = list.some((d) => d.runtime.status === 'loading');
  const serving = list.some((d) => d.runtime.status === 'ready');
  const status = loading ? 'loading' : storage === 'ok' && serving ? 'ready' : 'not ready';
  const classifiers = classifierStates();
  return reply
    .code(status === 'ready' ? 200 : 503)
    .send({ status, storage, deployments: states, ...(Object.keys(classifiers).length > 0 ? { classifiers } : {}) });
}

/**
 * GET /readyz on an API node (scale-out): the node runs no models, so readiness is the workers'. For
 * each configured deployment, how many live workers have it ready, loading and unavailable (from the
 * worker registry, read at most once a second). 200 when some deployment has a ready worker, as the
 * embedded server answers when some deployment can serve: a load balancer must not take every node out
 * because one deployment has no worker (its requests get 503 noLiveWorker, and the body shows it).
 * 503 `not ready` when no deployment has one, or when the registry cannot be read (Redis away).
 */
async function apiNodeReadyz(request: FastifyRequest, reply: FastifyReply) {
  const { deployments, workers, classifierStates } = request.server.services;
  let live;
  try {
    live = await workers!.live();
  } catch (error) {
    request.log.warn({ err: error }, 'readiness: the worker registry cannot be read');
    return reply.code(503).send({ status: 'not ready', workers: 'the worker registry in Redis cannot be read' });
  }
  const states = Object.fromEntries(
    [...deployments.values()].map((d) => {
      const counts = live.perDeployment.get(d.name) ?? { ready: 0, loading: 0, unavailable: 0 };
      return [d.name, { model: d.model, engine: d.engineName, workers: counts }];
    }),
  );
  const ready = Object.values(states).some((d) => d.workers.ready > 0);
  const classifiers = classifierStates();
  return reply.code(ready ? 200 : 503).send({
    status: ready ? 'ready' : 'not ready',
    liveWorkers: live.workers.length,
    deployments: states,
    ...(Object.keys(classifiers).length > 0 ? { classifiers } : {}),
  });
}
