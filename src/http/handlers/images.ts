import type { FastifyReply, FastifyRequest } from 'fastify';

import { decodedPixelsOf, probeEditUploads } from '../../codec/index.ts';
import { errors } from '../../contract/errors.ts';
import type { ImageRequest } from '../../contract/request.ts';
import { toImageRequest, validateParams } from '../../contract/validate.ts';
import { admit, type PendingEdit } from '../admit.ts';
import { readEditForm } from '../multipart.ts';
import { checkPrompt, type DeploymentSource, findDeployment, jsonBody, logPrompt } from '../request.ts';
import type { Deployment } from '../services.ts';
import { streamImages } from '../sse.ts';
import { imagesResponse, imageUrl, publicBase, takeImages } from '../wire.ts';

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
  if (deployment.runtime.model?.canEdit === false)
    throw errors.operationNotSupported(`${deployment.name} (its model has no vae_encoder)`, 'edits');
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

/** Prompt filter, then the queue, then the wire answer (JSON, or server-sent events). */
async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  deployment: Deployment,
  imageRequest: ImageRequest,
  edit?: PendingEdit,
) {
  const services = request.server.services;
  logPrompt(request, imageRequest);
  const promptResults = await checkPrompt(services, imageRequest);
  if (imageRequest.stream) return streamImages(request, reply, imageRequest, edit);
  const result = await (await admit(request, reply, imageRequest, { edit })).finished;
  const images = await takeImages(request, result);
  const base = publicBase(request, services);
  return reply.send(
    await imagesResponse(deployment.family, imageRequest, result, images, promptResults, (image) =>
      imageUrl(base, services, image),
    ),
  );
}
