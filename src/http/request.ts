// What the route handlers read from a request before any work starts: its JSON body, the
// deployment it names (and whether that deployment can serve), the prompt filter's verdict, and the
// prompt log line. Shared by the images and operations handlers.
import type { FastifyRequest } from 'fastify';

import type { PromptFilterResults } from '../contract/annotations.ts';
import { errors } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import { requireModelVersion } from './api-version.ts';
import type { Deployment, Services } from './services.ts';

/** Where a route finds the deployment: in the URL (Azure) or in the body's `model` (v1, OpenAI). */
export type DeploymentSource = 'path' | 'model';

/** With EASEL_LOG_PROMPTS on, one log line per request with its prompt (and the request id, as every line). */
export function logPrompt(request: FastifyRequest, imageRequest: ImageRequest): void {
  if (request.server.services.config.logPrompts)
    request.log.info({ deployment: imageRequest.deployment, prompt: imageRequest.prompt }, 'prompt');
}

/** The deployment a request names, or DeploymentNotFound / a 503 when its engine is unavailable. */
export function findDeployment(
  services: Services,
  request: FastifyRequest,
  source: DeploymentSource,
  model: unknown,
): Deployment {
  let name: unknown;
  if (source === 'path') {
    name = (request.params as { deployment?: string }).deployment;
  } else {
    if (model === undefined || model === '') throw errors.missingParameter('model');
    if (typeof model !== 'string') throw errors.invalidParameter('model', "'model' must be a string.");
    name = model;
  }
  const deployment = usable(typeof name === 'string' ? services.deployments.get(name) : undefined, name, [
    ...services.deployments.keys(),
  ]);
  requireModelVersion(request, deployment.family.id, deployment.family.minApiVersion);
  return deployment;
}

/** DeploymentNotFound, or a 503 while the deployment's engine is unavailable. */
export function usable(
  deployment: Deployment | undefined,
  name: unknown = null,
  known: readonly string[] = [],
): Deployment {
  if (!deployment) throw errors.deploymentNotFound(typeof name === 'string' ? name : null, known);
  const { runtime } = deployment;
  if (runtime.status === 'unavailable')
    throw errors.deploymentUnavailable(deployment.name, runtime.reason ?? 'its engine is unavailable');
  return deployment;
}

/** Blocked prompts fail before anything is queued or stored. */
export async function checkPrompt(services: Services, request: ImageRequest): Promise<PromptFilterResults> {
  const verdict = await services.promptFilter.check(request.prompt, {
    deployment: request.deployment,
    moderation: request.moderation,
  });
  if (verdict.blocked) throw errors.contentPolicyViolation(verdict.results);
  return verdict.results;
}

/** The JSON object body of a generations or submit request. */
export function jsonBody(request: FastifyRequest): Record<string, unknown> {
  if (request.isMultipart()) throw errors.unsupportedMediaType('application/json', request.headers['content-type']);
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw errors.invalidJson('the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
