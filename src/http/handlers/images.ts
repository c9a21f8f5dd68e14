import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PromptFilterResults } from '../../contract/annotations.ts';
import { errors } from '../../contract/errors.ts';
import { hasTransparentPixel, type ImageRequest, type RawImage } from '../../contract/request.ts';
import { resolveSize, toImageRequest, validateParams, type EditInputs } from '../../contract/validate.ts';
import { decodeUpload, resizeTo } from '../../storage/encoding.ts';
import { admit } from '../admit.ts';
import { requireModelVersion } from '../api-version.ts';
import { readEditForm, type EditForm } from '../multipart.ts';
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
  const inputs = await decodeEditInputs(services, deployment, form, values.size as string | undefined);
  const imageRequest = toImageRequest(deployment.family, 'edit', deployment.name, values, inputs);
  return respond(request, reply, deployment, imageRequest);
}

/** With EASEL_LOG_PROMPTS on, one log line per request with its prompt (and the request id, as every line). */
export function logPrompt(request: FastifyRequest, imageRequest: ImageRequest): void {
  if (request.server.services.config.logPrompts) request.log.info({ deployment: imageRequest.deployment, prompt: imageRequest.prompt }, 'prompt');
}

/** Prompt filter, then the queue, then the wire answer (JSON, or server-sent events). */
async function respond(request: FastifyRequest, reply: FastifyReply, deployment: Deployment, imageRequest: ImageRequest) {
  const services = request.server.services;
  logPrompt(request, imageRequest);
  const promptResults = await checkPrompt(services, imageRequest);
  if (imageRequest.stream) return streamImages(request, reply, imageRequest);
  const result = await (await admit(request, reply, imageRequest)).finished;
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

/**
 * Decode the uploads once, check the mask against the first image, and bring everything to the
 * output size. With `size` auto (the default) or equal to the input's size nothing is resized, so
 * pixels outside the mask come back exactly as sent.
 */
async function decodeEditInputs(services: Services, deployment: Deployment, form: EditForm, size: string | undefined): Promise<EditInputs> {
  const { maxInputPixels } = services.config.limits;
  if (form.images.length === 0) throw errors.missingParameter('image');
  if (form.images.length > deployment.family.maxEditImages) {
    throw errors.invalidParameter('image', `At most ${deployment.family.maxEditImages} images can be edited at once.`);
  }
  const decoded: RawImage[] = [];
  for (const bytes of form.images) decoded.push((await decodeUpload(bytes, { param: 'image', maxPixels: maxInputPixels })).image);
  const first = decoded[0]!;
  const out = resolveSize(size, 'edit', first);

  let mask: RawImage | null = null;
  if (form.mask) {
    const upload = await decodeUpload(form.mask, { param: 'mask', maxPixels: maxInputPixels, allowed: ['png'] });
    if (!upload.hasAlpha) throw errors.invalidImage('mask', "The mask must be a PNG with an alpha channel; alpha 0 marks where to edit.");
    if (upload.image.width !== first.width || upload.image.height !== first.height) {
      throw errors.invalidImage(
        'mask',
        `The mask is ${upload.image.width}x${upload.image.height}; it must be the size of the image, ${first.width}x${first.height}.`,
      );
    }
    // Deliberate: a mask without a transparent pixel asks for no change at all, which is almost
    // always an inverted or wrong mask; say so rather than return the input (docs/deviations.md).
    if (!hasTransparentPixel(upload.image)) {
      throw errors.invalidImage('mask', 'The mask has no transparent pixels, so there is nothing to edit: alpha 0 marks the area to change.');
    }
    mask = await fit(upload.image, out.width, out.height, 'fill');
  }
  const images: RawImage[] = [];
  for (const image of decoded) images.push(await fit(image, out.width, out.height, 'cover'));
  return { images, mask, inputWidth: first.width, inputHeight: first.height };
}

function fit(image: RawImage, width: number, height: number, mode: 'fill' | 'cover'): Promise<RawImage> | RawImage {
  return image.width === width && image.height === height ? image : resizeTo(image, width, height, mode);
}
