import type { FastifyReply, FastifyRequest } from 'fastify';

import { ApiError, errors } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import { estimateUsage } from '../contract/usage.ts';
import type { JobProgress, JobResult } from '../jobs/job-contract.ts';
import { admit, type PendingEdit } from './admit.ts';
import { toApiError } from './errors.ts';
import { bytesAt, gptImageFields, refuseIfWithheld, takeImages } from './wire.ts';

/**
 * `stream: true` (gpt-image-1): server-sent events as the OpenAI SDKs parse them (docs/azure-api.md, "Streaming"):
 * up to `partial_images` `<kind>.partial_image` events, from the partial images the job reports in
 * its progress (filtered, encoded and stored by the process that runs it), then one
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
    // Read (and delete) the result's keys first, so they go even if a partial image failed.
    const images = await takeImages(request, result, { stored: true });
    await partials.settled();
    refuseIfWithheld(result);
    writeCompleted(stream, result, images);
  } catch (error) {
    // Partial images already on their way are sent (or their keys deleted) before the error.
    await partials.settled().catch(() => {});
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
 * Per progress report: each partial image it names is read from the blob store, sent and deleted.
 * The chain keeps them in order; `settled` waits for it and rejects if one could not be sent (its
 * key missing), after every key has still been deleted.
 */
function partialImages(stream: Stream) {
  const { request } = stream;
  const { blobs } = request.server.services;
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown = null;
  const onProgress = (progress: JobProgress) => {
    for (const partial of progress.partialImages ?? []) {
      chain = chain.then(async () => {
        try {
          if (failure === null) await sendPartialImage(stream, partial.key, partial.partialImageIndex);
        } catch (error) {
          failure = error;
        } finally {
          await blobs
            .delete(partial.key)
            .catch((error: unknown) => request.log.warn({ key: partial.key, err: error }, 'could not delete an image'));
        }
      });
    }
  };
  return {
    onProgress,
    settled: async () => {
      await chain;
      if (failure !== null) throw failure;
    },
  };
}

/** One partial image, as the job stored it. */
async function sendPartialImage(
  { request, kind, fields, events }: Stream,
  key: string,
  partialImageIndex: number,
): Promise<void> {
  const bytes = await request.server.services.blobs.get(key);
  if (bytes === null) {
    request.log.error({ key }, 'a partial image is missing from the blob store');
    throw errors.internal(request.id);
  }
  events.write(`${kind}.partial_image`, {
    type: `${kind}.partial_image`,
    b64_json: bytes.toString('base64'),
    created_at: Math.floor(Date.now() / 1000),
    ...fields,
    partial_image_index: partialImageIndex,
  });
}

/** Final: one `<kind>.completed` per image the filter let through. */
function writeCompleted(
  { imageRequest, kind, fields, events }: Stream,
  result: JobResult,
  images: (Buffer | null)[],
): void {
  const usage = estimateUsage(imageRequest);
  for (const [index, item] of result.items.entries()) {
    if (item.filtered) continue;
    events.write(`${kind}.completed`, {
      type: `${kind}.completed`,
      b64_json: bytesAt(images, index).toString('base64'),
      created_at: result.created,
      ...fields,
      usage,
    });
  }
}

/** Error: once the stream is open, a failure is an `error` event in Azure's envelope. */
function writeError({ request, events }: Stream, error: unknown): void {
  const apiError = toApiError(error, request, request.server.services.config.limits);
  // A job's failure was logged in full where it ran; here only what the client is told.
  if (apiError.status >= 500) request.log.error({ err: error }, 'streamed generation failed');
  else if (!(error instanceof ApiError)) request.log.info({ code: apiError.code }, 'streamed generation refused');
  events.write('error', { type: 'error', ...apiError.toWire() });
}
