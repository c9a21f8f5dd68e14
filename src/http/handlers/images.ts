import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PromptFilterResults } from '../../contract/annotations.ts';
import { errors } from '../../contract/errors.ts';
import type { ImageRequest } from '../../contract/request.ts';
import { toImageRequest, validateParams } from '../../contract/validate.ts';
import { decodedPixelsOf, probeEditUploads } from '../../storage/edit-uploads.ts';
import { admit, type PendingEdit } from '../admit.ts';
import { requireModelVersion } from '../api-version.ts';
import { readEditForm } from '../multipart.ts';
import type { Deployment, Services } from '../services.ts';
import { streamImages } from '../sse.ts';
import { imagesResponse, imageUrl, publicBase } from '../wire.ts';

/** Where a route finds the deployment: in the URL (Azure) or in the body's `model` (v1, OpenAI). */
export type DeploymentSource = 'path' | 'model';

/** POST …/images/generations (JSON). */
export async function generate(request: FastifyRequest, reply: FastifyReply, source: DeploymentSource) {
  const services = request.server.services;
  const body = jsonBody(request);
  const deployment = findDeployment(services, request, source, body.model);
  const values = validateParams(deployment.family, 'generation', body, 'json');
  const imageRequest = toImageRequest(deployment.family, 'generation', deployment.name, values);
  return respond(request, reply, deployment, imageRequest);
}

/** POST …/images/edits (multipart: image | image[] …, optional mask). */
export async function edit(request: FastifyRequest, reply: FastifyReply, source: DeploymentSource) {
  const services = request.server.services;
  const form = await readEditForm(request, services.config.limits);
  const deployment = findDeployment(services, request, source, form.fields.model);
  // A diffusion model without a vae_encoder can only generate.
  if (deployment.runtime.model?.canEdit === false) throw errors.operationNotSupported(`${deployment.name} (its model has no vae_encoder)`, 'edits');
  const values = validateParams(deployment.family, 'edit', form.fields, 'multipart');
  // Only the uploads' headers are read here; their pixels are decoded when the job runs.
  const uploads = await probeEditUploads(form.images, form.mask, {
    maxInputPixels: services.config.limits.maxInputPixels,
    maxImages: deployment.family.maxEditImages,
  });
  const first = uploads.images[0]!;
  const imageRequest = toImageRequest(deployment.family, 'edit', deployment.name, values, {
    inputCount: uploads.images.length,
    inputWidth: first.width,
    inputHeight: first.height,
  });
  const pixels = decodedPixelsOf(uploads, imageRequest);
  const limit = services.pixelBudget.perRequest;
  if (pixels > limit) {
    throw errors.invalidImage(
      'image',
      `Decoded, these uploads and the ${imageRequest.n} output image(s) at ${imageRequest.width}x${imageRequest.height} need ${pixels} pixels, ` +
        `more than this server's limit of ${limit} per edit (limits.maxEditPixels). Send fewer or smaller images, or ask for a smaller size or n.`,
    );
  }
  return respond(request, reply, deployment, imageRequest, { uploads, pixels });
}

/** With EASEL_LOG_PROMPTS on, one log line per request with its prompt (and the request id, as every line). */
export function logPrompt(request: FastifyRequest, imageRequest: ImageRequest): void {
  if (request.server.services.config.logPrompts) request.log.info({ deployment: imageRequest.deployment, prompt: imageRequest.prompt }, 'prompt');
}

/** Prompt filter, then the queue, then the wire answer (JSON, or server-sent events). */
async function respond(request: FastifyRequest, reply: FastifyReply, deployment: Deployment, imageRequest: ImageRequest, edit?: PendingEdit) {
  const services = request.server.services;
  logPrompt(request, imageRequest);
  const promptResults = await checkPrompt(services, imageRequest);
  if (imageRequest.stream) return streamImages(request, reply, imageRequest, edit);
  const result = await (await admit(request, reply, imageRequest, { edit })).finished;
  const base = publicBase(request, services);
  return reply.send(
    imagesResponse(deployment.family, imageRequest, result, promptResults, (image) => imageUrl(base, services, image)),
  );
}

/** The deployment a request names, or DeploymentNotFound / a 503 when its engine is unavailable. */
export function findDeployment(services: Services, request: FastifyRequest, source: DeploymentSource, model: unknown): Deployment {
  let name: unknown;
  if (source === 'path') {
    name = (request.params as { deployment?: string }).deployment;
  } else {
    if (model === undefined || model === '') throw errors.missingParameter('model');
    if (typeof model !== 'string') throw errors.invalidParameter('model', "'model' must be a string.");
    name = model;
  }
  const deployment = usable(typeof name === 'string' ? services.deployments.get(name) : undefined, name, [...services.deployments.keys()]);
  requireModelVersion(request, deployment.family.id, deployment.family.minApiVersion);
  return deployment;
}

/** DeploymentNotFound, or a 503 while the deployment's engine is unavailable. */
export function usable(deployment: Deployment | undefined, name: unknown = null, known: readonly string[] = []): Deployment {
  if (!deployment) throw errors.deploymentNotFound(typeof name === 'string' ? name : null, known);
  const { runtime } = deployment;
  if (runtime.status === 'unavailable') throw errors.deploymentUnavailable(deployment.name, runtime.reason ?? 'its engine is unavailable');
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
