import type { FastifyReply, FastifyRequest } from 'fastify';
import { encodeImage } from '../codec/index.ts';
import { ApiError } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import { estimateUsage } from '../contract/usage.ts';
import { partialImageDue, type EngineProgress } from '../engines/engine.ts';
import { admit, type PendingEdit } from './admit.ts';
import { toApiError } from './errors.ts';
import { gptImageFields, refuseIfWithheld } from './wire.ts';

/**
 * `stream: true` (gpt-image-1): server-sent events as the OpenAI SDKs parse them (docs/azure-api.md, "Streaming"):
 * up to `partial_images` `<kind>.partial_image` events fed by the engine's progress, then one
 * `<kind>.completed` per image. Admission happens before the stream opens, so a full queue is
 * still an ordinary 429; a failure after that is an `error` event.
 */
export async function streamImages(request: FastifyRequest, reply: FastifyReply, imageRequest: ImageRequest, edit?: PendingEdit) {
  const kind = imageRequest.operation === 'edit' ? 'image_edit' : 'image_generation';
  const fields = gptImageFields(imageRequest);
  let open = false;
  const pending: string[] = [];
  const write = (event: string, data: object) => {
    const chunk = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (open) reply.raw.write(chunk);
    else pending.push(chunk);
  };

  // Partial images are filtered and encoded off the progress callback; the chain keeps them in
  // order. A preview the image filter blocks is not sent (the final image will fail too).
  let encoding: Promise<void> = Promise.resolve();
  const planned = new Array<number>(imageRequest.n).fill(0);
  const sent = new Array<number>(imageRequest.n).fill(0);
  const { imageFilter, deployments } = request.server.services;
  const engine = deployments.get(imageRequest.deployment)?.engineName ?? 'unknown';
  const onProgress = (progress: EngineProgress) => {
    if (!progress.previews || progress.step >= progress.totalSteps) return;
    progress.previews.forEach((preview, index) => {
      // Spread evenly over the steps, as the engine plans its previews (the last step is the final image).
      if (!partialImageDue(progress.step, progress.totalSteps, planned[index]!, imageRequest.partialImages)) return;
      planned[index]!++;
      encoding = encoding.then(async () => {
        const verdict = await imageFilter.check(preview, { deployment: imageRequest.deployment, moderation: imageRequest.moderation, engine });
        if (verdict.blocked) return;
        const bytes = await encodeImage(preview, imageRequest.outputFormat, imageRequest.outputCompression);
        write(`${kind}.partial_image`, {
          type: `${kind}.partial_image`,
          b64_json: bytes.toString('base64'),
          created_at: Math.floor(Date.now() / 1000),
          ...fields,
          partial_image_index: sent[index]!++,
        });
      });
      // Handled here so a failure waits for `await encoding` below instead of crashing the process.
      encoding.catch(() => {});
    });
  };

  const { finished } = await admit(request, reply, imageRequest, { onProgress, edit });

  reply.hijack();
  reply.raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  // Send the headers now: a slow job must not keep the client (or a proxy) waiting for them.
  reply.raw.flushHeaders();
  open = true;
  for (const chunk of pending.splice(0)) reply.raw.write(chunk);

  try {
    const result = await finished;
    await encoding;
    refuseIfWithheld(result);
    const usage = estimateUsage(imageRequest);
    for (const item of result.items) {
      if (item.filtered) continue;
      write(`${kind}.completed`, {
        type: `${kind}.completed`,
        b64_json: item.bytes.toString('base64'),
        created_at: result.created,
        ...fields,
        usage,
      });
    }
  } catch (error) {
    const apiError = error instanceof ApiError ? error : toApiError(error, request, request.server.services.config.limits);
    if (!(error instanceof ApiError)) request.log.error({ err: error }, 'streamed generation failed');
    write('error', { type: 'error', ...apiError.toWire() });
  } finally {
    reply.raw.end();
  }
}
