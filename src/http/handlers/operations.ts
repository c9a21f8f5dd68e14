import type { FastifyReply, FastifyRequest } from 'fastify';

import { errors } from '../../contract/errors.ts';
import { toImageRequest, validateParams } from '../../contract/validate.ts';
import { jsonBody, logPrompt, usable } from '../request.ts';
import type { Services } from '../services.ts';
import { imageUrl, operationResponse, publicBase } from '../wire.ts';

/**
 * DALL-E 2's asynchronous flow (docs/azure-api.md, "DALL-E 2 operations"): submit → 202 with an absolute
 * operation-location,
 * poll with GET, DELETE once it has ended.
 */

/** POST /openai/images/generations:submit — no deployment in the URL: the first dall-e-2 deployment serves it. */
export async function submit(request: FastifyRequest, reply: FastifyReply) {
  const services = request.server.services;
  const body = jsonBody(request);
  const deployment = usable(
    [...services.deployments.values()].find((d) => d.model === 'dall-e-2'),
    'a dall-e-2 deployment (serves :submit)',
    [...services.deployments.keys()],
  );
  const values = validateParams(deployment.family, 'submit', body, 'json');
  // The submit table has no response_format, so results default to URLs, as operations need.
  const imageRequest = toImageRequest(deployment.family, 'generation', deployment.name, values);
  logPrompt(request, imageRequest);
  const verdict = await services.promptFilter.check(imageRequest.prompt, {
    deployment: deployment.name,
    moderation: 'auto',
  });
  // Scale-out: refused at once (503) when no live worker could run it.
  if (!verdict.blocked) await services.workers?.require(deployment.name);
  const operation = verdict.blocked
    ? await services.operations.submitFiltered(imageRequest)
    : await services.operations.submit(imageRequest);
  // The operation's own log lines carry its id; this line ties it to the request id.
  request.log.info({ operationId: operation.id, status: operation.status }, 'operation submitted');

  const apiVersion = (request.query as { 'api-version'?: string })['api-version']!;
  const location = `${publicBase(request, services)}/openai/operations/images/${operation.id}?api-version=${encodeURIComponent(apiVersion)}`;
  return reply
    .code(202)
    .header('operation-location', location)
    .header('retry-after', '1')
    .send({ id: operation.id, status: operation.status, created: operation.created });
}

/** GET /openai/operations/images/{id} */
export async function get(request: FastifyRequest, reply: FastifyReply) {
  const services = request.server.services;
  const operation = await services.operations.get(idOf(request));
  if (!operation) throw errors.operationNotFound(idOf(request));
  const base = publicBase(request, services);
  // Links are made up front (a presigned one is computed asynchronously); an item without one has expired.
  const urls = new Map(
    await Promise.all(
      (await services.store.listImagesOfOperation(operation.id)).map(
        async (image) => [image.id, await imageUrl(base, services, image)] as const,
      ),
    ),
  );
  const body = operationResponse(operation, (imageId) => urls.get(imageId) ?? null);
  // The legacy python client sleeps `retry-after` seconds between polls.
  if (operation.status === 'notRunning' || operation.status === 'running') reply.header('retry-after', '1');
  return reply.send(body);
}

/** DELETE /openai/operations/images/{id} — 204 once the operation has ended; its images go with it. */
export async function remove(request: FastifyRequest, reply: FastifyReply) {
  const services: Services = request.server.services;
  const id = idOf(request);
  const outcome = await services.operations.delete(id);
  if (outcome.deleted) return reply.code(204).send();
  if (outcome.status === null || outcome.status === 'deleted') throw errors.operationNotFound(id);
  throw errors.operationNotTerminal(id, outcome.status);
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}
