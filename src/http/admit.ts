import type { FastifyReply, FastifyRequest } from 'fastify';

import type { EditUploads } from '../codec/index.ts';
import { errors } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import type { AddOptions } from '../jobs/queue.ts';
import type { GenerationResult } from '../jobs/runner.ts';

/** An edit's uploads (still compressed) and the decoded pixels its job will hold at most. */
export interface PendingEdit {
  uploads: EditUploads;
  pixels: number;
}

/**
 * Admit a sync request to the queue (QueueFullError → 429 before anything is written) and tie the
 * job to the connection: a client that hangs up before the answer is written cancels its job. An
 * edit first reserves its decoded pixels in the in-flight budget (429 when they do not fit), held
 * until its job settles.
 */
export async function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  imageRequest: ImageRequest,
  options: { onProgress?: AddOptions['onProgress']; edit?: PendingEdit } = {},
): Promise<{ finished: Promise<GenerationResult> }> {
  const { queue, pixelBudget } = request.server.services;
  const { edit, onProgress } = options;
  const release = edit ? pixelBudget.reserve(edit.pixels) : () => {};
  if (!release) {
    request.log.info(
      { pixels: edit!.pixels, inUse: pixelBudget.inUse(), limit: pixelBudget.inFlight },
      'edit refused: decoded-pixel budget in use',
    );
    throw errors.tooManyRequests(
      queue.retryAfterSeconds(),
      'the edits it is working on hold all the decoded pixels it allows (limits.maxPixelsInFlight)',
    );
  }
  const hangUp = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableEnded) hangUp.abort(new Error('the client went away'));
  };
  reply.raw.once('close', onClose);
  try {
    const { finished } = await queue.add(
      request.id,
      { request: imageRequest, operationId: null, ...(edit ? { uploads: edit.uploads } : {}) },
      { signal: hangUp.signal, onProgress },
    );
    const settled = finished.finally(() => {
      release();
      reply.raw.off('close', onClose);
    });
    // The caller may await it only later (a stream opens first); it must not count as unhandled.
    settled.catch(() => {});
    return { finished: settled };
  } catch (error) {
    release();
    reply.raw.off('close', onClose);
    throw error;
  }
}
