import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRequest } from '../contract/request.ts';
import type { AddOptions } from '../jobs/queue.ts';
import type { GenerationResult } from '../jobs/runner.ts';

/**
 * Admit a sync request to the queue (QueueFullError → 429 before anything is written) and tie the
 * job to the connection: a client that hangs up before the answer is written cancels its job.
 */
export async function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  imageRequest: ImageRequest,
  onProgress?: AddOptions['onProgress'],
): Promise<{ finished: Promise<GenerationResult> }> {
  const hangUp = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableEnded) hangUp.abort(new Error('the client went away'));
  };
  reply.raw.once('close', onClose);
  try {
    const { finished } = await request.server.services.queue.add(
      request.id,
      { request: imageRequest, operationId: null },
      { signal: hangUp.signal, onProgress },
    );
    const settled = finished.finally(() => reply.raw.off('close', onClose));
    // The caller may await it only later (a stream opens first); it must not count as unhandled.
    settled.catch(() => {});
    return { finished: settled };
  } catch (error) {
    reply.raw.off('close', onClose);
    throw error;
  }
}
