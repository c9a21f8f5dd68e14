import type { FastifyReply, FastifyRequest } from 'fastify';

import { encodeImage } from '../codec/index.ts';
import { ApiError } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import { estimateUsage } from '../contract/usage.ts';
import { type EngineProgress, partialImageDue } from '../engines/engine.ts';
import { admit, type PendingEdit } from './admit.ts';
import { toApiError } from './errors.ts';
import { gptImageFields, refuseIfWithheld } from './wire.ts';

/**
 * `stream: true` (gpt-image-1): server-sent events as the OpenAI SDKs parse them (docs/azure-api.md, "Streaming"):
 * up to `partial_images` `<kind>.partial_image` events fed by the engine's progress, then one
 * `<kind>.completed` per image. Admission happens before the stream opens, so a full queue is
 * still an ordinary 429; a failure after that is an `error` event.
 */
export async function streamImages(
  request: FastifyRequest,
  reply: FastifyReply,
  imageRequest: ImageRequest,
  edit?: PendingEdit,
) {
  const kind = imageRequest.operation === 'edit' ? 'image_edit' : 'image_generation';
  const stream: Stream = {
    request,
    imageRequest,
    kind,
    fields: gptImageFields(imageRequest),
    events: eventWriter(reply),
  };
  const partials = partialImages(stream);
  const { finished } = await admit(request, reply, imageRequest, { onProgress: partials.onProgress, edit });
  openStream(reply, stream.events);
  try {
    const result = await finished;
    await partials.settled();
    refuseIfWithheld(result);
    writeCompleted(stream, result);
  } catch (error) {
    writeError(stream, error);
  } finally {
    reply.raw.end();
  }
}

/** One streamed answer: what its events are made of and where they go. */
interface Stream {
  request: FastifyRequest;
  imageRequest: ImageRequest;
  kind: 'image_edit' | 'image_generation';
  fields: ReturnType<typeof gptImageFields>;
  events: EventWriter;
}

interface EventWriter {
  write(event: string, data: object): void;
  /** Sends what was written before the stream opened, and from now on writes straight through. */
  open(): void;
}

/** Server-sent events; those written before the stream opens (progress during admission) wait. */
function eventWriter(reply: FastifyReply): EventWriter {
  let open = false;
  const pending: string[] = [];
  return {
    write(event, data) {
      const chunk = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
      if (open) reply.raw.write(chunk);
      else pending.push(chunk);
    },
    open() {
      open = true;
      for (const chunk of pending.splice(0)) reply.raw.write(chunk);
    },
  };
}

/** Start: the 200 and its event-stream headers, taken out of Fastify's hands. */
function openStream(reply: FastifyReply, events: EventWriter): void {
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
  events.open();
}

/**
 * Per progress event: the previews that are due become partial images. They are filtered and
 * encoded off the progress callback; the chain keeps them in order, and `settled` waits for it.
 */
function partialImages(stream: Stream) {
  const { request, imageRequest } = stream;
  const { imageFilter, deployments } = request.server.services;
  const engine = deployments.get(imageRequest.deployment)?.engineName ?? 'unknown';
  const check = (preview: Preview) =>
    imageFilter.check(preview, { deployment: imageRequest.deployment, moderation: imageRequest.moderation, engine });
  let encoding: Promise<void> = Promise.resolve();
  const planned = new Array<number>(imageRequest.n).fill(0);
  const sent = new Array<number>(imageRequest.n).fill(0);
  const onProgress = (progress: EngineProgress) => {
    if (!progress.previews || progress.step >= progress.totalSteps) return;
    progress.previews.forEach((preview, index) => {
      // Spread evenly over the steps, as the engine plans its previews (the last step is the final image).
      if (!partialImageDue(progress.step, progress.totalSteps, planned[index]!, imageRequest.partialImages)) return;
      planned[index]!++;
      encoding = encoding.then(() => sendPartialImage(stream, check, preview, () => sent[index]!++));
      // Handled here so a failure waits for `settled` instead of crashing the process.
      encoding.catch(() => {});
    });
  };
  return { onProgress, settled: () => encoding };
}

type Preview = NonNullable<EngineProgress['previews']>[number];

/** One partial image; a preview the image filter blocks is not sent (the final image will fail too). */
async function sendPartialImage(
  { imageRequest, kind, fields, events }: Stream,
  check: (preview: Preview) => Promise<{ blocked: boolean }>,
  preview: Preview,
  nextIndex: () => number,
): Promise<void> {
  const verdict = await check(preview);
  if (verdict.blocked) return;
  const bytes = await encodeImage(preview, imageRequest.outputFormat, imageRequest.outputCompression);
  events.write(`${kind}.partial_image`, {
    type: `${kind}.partial_image`,
    b64_json: bytes.toString('base64'),
    created_at: Math.floor(Date.now() / 1000),
    ...fields,
    partial_image_index: nextIndex(),
  });
}

/** Final: one `<kind>.completed` per image the filter let through. */
function writeCompleted(
  { imageRequest, kind, fields, events }: Stream,
  result: Awaited<Awaited<ReturnType<typeof admit>>['finished']>,
): void {
  const usage = estimateUsage(imageRequest);
  for (const item of result.items) {
    if (item.filtered) continue;
    events.write(`${kind}.completed`, {
      type: `${kind}.completed`,
      b64_json: item.bytes.toString('base64'),
      created_at: result.created,
      ...fields,
      usage,
    });
  }
}

/** Error: once the stream is open, a failure is an `error` event in Azure's envelope. */
function writeError({ request, events }: Stream, error: unknown): void {
  const apiError =
    error instanceof ApiError ? error : toApiError(error, request, request.server.services.config.limits);
  if (!(error instanceof ApiError)) request.log.error({ err: error }, 'streamed generation failed');
  events.write('error', { type: 'error', ...apiError.toWire() });
}
