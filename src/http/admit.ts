import type { FastifyReply, FastifyRequest } from 'fastify';

import type { EditUploads } from '../codec/index.ts';
import { errors } from '../contract/errors.ts';
import type { ImageRequest } from '../contract/request.ts';
import type { AddOptions, JobData, JobResult, UploadRef } from '../jobs/job-contract.ts';
import { uploadKey } from '../jobs/transient-keys.ts';
import type { BlobStore } from '../storage/index.ts';

/** An edit's uploads (still compressed) and the decoded pixels its job will hold at most. */
export interface PendingEdit {
  uploads: EditUploads;
  pixels: number;
}

/**
 * Admit a sync request to the queue (QueueFullError → 429 before anything is written; on an API node,
 * noLiveWorker → 503 when no live worker has the deployment ready) and tie the
 * job to the connection: a client that hangs up before the answer is written cancels its job. An
 * edit first reserves its decoded pixels in the in-flight budget (429 when they do not fit), held
 * until its job settles, and puts its uploads in the blob store under transient keys, which the
 * job carries and which are deleted here once the job settles (success or failure).
 */
export async function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  imageRequest: ImageRequest,
  options: { onProgress?: AddOptions['onProgress']; edit?: PendingEdit } = {},
): Promise<{ finished: Promise<JobResult> }> {
  const { queue, pixelBudget, blobs, workers } = request.server.services;
  const { edit, onProgress } = options;
  // Scale-out: a job that no live worker could take is refused now, not left waiting (503).
  await workers?.require(imageRequest.deployment);
  const release = edit ? pixelBudget.reserve(edit.pixels) : () => {};
  if (!release) {
    request.log.info(
      { pixels: edit!.pixels, inUse: pixelBudget.inUse(), limit: pixelBudget.inFlight },
      'edit refused: decoded-pixel budget in use',
    );
    throw errors.tooManyRequests(
      await queue.retryAfterSeconds(imageRequest.deployment),
      'the edits it is working on hold all the decoded pixels it allows (limits.maxPixelsInFlight)',
    );
  }
  const hangUp = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableEnded) hangUp.abort(new Error('the client went away'));
  };
  reply.raw.once('close', onClose);
  const keys: string[] = [];
  const cleanUp = async () => {
    release();
    reply.raw.off('close', onClose);
    await deleteKeys(blobs, keys, request);
  };
  try {
    const data: JobData = { request: imageRequest, operationId: null };
    if (edit) data.uploads = await putUploads(blobs, request.id, edit.uploads, keys);
    const { finished } = await queue.add(request.id, data, { signal: hangUp.signal, onProgress });
    const settled = finished.finally(cleanUp);
    // The caller may await it only later (a stream opens first); it must not count as unhandled.
    settled.catch(() => {});
    return { finished: settled };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** The uploads, still compressed, in the blob store; `keys` collects what was written. */
async function putUploads(
  blobs: BlobStore,
  jobId: string,
  uploads: EditUploads,
  keys: string[],
): Promise<NonNullable<JobData['uploads']>> {
  const put = async ({ bytes, ...probed }: EditUploads['images'][number], key: string): Promise<UploadRef> => {
    keys.push(key);
    await blobs.put(key, bytes);
    return { ...probed, key };
  };
  const images: UploadRef[] = [];
  for (const [index, upload] of uploads.images.entries()) images.push(await put(upload, uploadKey(jobId, index)));
  const mask = uploads.mask ? await put(uploads.mask, uploadKey(jobId, 'mask')) : null;
  return { images, mask, maxInputPixels: uploads.maxInputPixels };
}

/** Best effort: a key left behind is swept by age, so a failed delete is logged, not raised. */
async function deleteKeys(blobs: BlobStore, keys: string[], request: FastifyRequest): Promise<void> {
  for (const key of keys.splice(0)) {
    await blobs
      .delete(key)
      .catch((error: unknown) => request.log.warn({ key, err: error }, 'could not delete an upload'));
  }
}
