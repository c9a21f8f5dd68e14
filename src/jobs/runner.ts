import { randomUUID } from 'node:crypto';

import { contentTypeOf, decodeEditUploads, encodeImage } from '../codec/index.ts';
import type { ContentFilterResults } from '../contract/annotations.ts';
import { ApiError } from '../contract/errors.ts';
import type { ImageRequest, RawImage } from '../contract/request.ts';
import { type Engine, type EngineOutput, type EngineProgress, partialImageDue } from '../engines/engine.ts';
import type { ImageFilter } from '../safety/image-filter.ts';
import { type BlobStore, imageKey } from '../storage/index.ts';
import type {
  DeliveredImage,
  JobContext,
  JobData,
  JobProgress,
  JobResult,
  UploadRef,
  WithheldImage,
} from './job-contract.ts';
import type { ImageRecord, OperationStore } from './operation-store.ts';
import { partialImageKey, resultKey } from './transient-keys.ts';

export type StoredImage = Pick<ImageRecord, 'id' | 'key' | 'expires'>;

export type JobOutcome = 'succeeded' | 'failed' | 'canceled';

/** What the runner counts, for the operators' metrics (GET /metrics); labels are deployment names only. */
export interface RunnerMetrics {
  /** The engine returned `count` images (those the filter blocks included), with its per-stage model times. */
  imagesGenerated(deployment: string, engine: string, count: number, stageTimings: EngineOutput['stageTimings']): void;
  imageFiltered(deployment: string): void;
  jobFinished(deployment: string, outcome: JobOutcome, seconds: number): void;
}

export interface RunnerDeps {
  engineFor(deployment: string): Engine;
  imageFilter: ImageFilter;
  store: OperationStore;
  blobs: BlobStore;
  imageUrlTtlSeconds: number;
  metrics?: RunnerMetrics;
  /**
   * Where a withheld image is reported, with the filter and category, and where a job that failed
   * for anything but a catalogue error is logged in full (its client sees only the catalogue's text).
   */
  log?: { warn(details: object, message: string): void; error(details: object, message: string): void };
  now?: () => number;
}

/**
 * Drives one job through the engine, the image filter, encoding and storage, in the process that
 * runs it. It knows nothing of HTTP: what it returns is the job contract's JSON result, with every
 * delivered image in the blob store (docs/scale-out.md, "The job contract").
 */
export function createRunner(deps: RunnerDeps) {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));

  const { metrics } = deps;

  return async function run(data: JobData, context: JobContext): Promise<JobResult> {
    const { deployment } = data.request;
    const started = performance.now();
    let outcome: JobOutcome = 'failed';
    try {
      const result = await generate(data, context);
      outcome = 'succeeded';
      return result;
    } catch (error) {
      if (context.signal.aborted) outcome = 'canceled';
      // DALL-E 2 operations log their own failures, under the operation id (jobs/operations.ts).
      else if (!(error instanceof ApiError) && data.operationId === null)
        deps.log?.error({ jobId: context.id, deployment, err: error }, 'job failed');
      throw error;
    } finally {
      metrics?.jobFinished(deployment, outcome, (performance.now() - started) / 1000);
    }
  };

  async function generate(data: JobData, context: JobContext): Promise<JobResult> {
    const { request: sent, operationId, uploads } = data;
    // 0. Edits: read and decode the uploads only now, so a waiting job holds compressed bytes in the
    // blob store, not pixels.
    const request = uploads ? { ...sent, ...(await decodeUploads(uploads, sent)) } : sent;
    context.signal.throwIfAborted();
    // 1. Generate raw pixels; the engine reports progress and checks the signal between steps.
    const engine = deps.engineFor(request.deployment);
    const progress = progressReporter(request, engine.name, context);
    let output: EngineOutput;
    try {
      output = await engine.run(request, { onProgress: progress.onProgress, signal: context.signal });
    } catch (error) {
      // Report the partial images already on their way, so their keys reach the side that deletes them.
      await progress.settled().catch(() => {});
      throw error;
    }
    // The partial images go out before the result, in order.
    await progress.settled();
    metrics?.imagesGenerated(request.deployment, engine.name, output.images.length, output.stageTimings);
    const created = now();

    // 2. Filter, encode and store each image: for a URL with its record, for b64_json under a
    // transient key the admitting side reads once. A filtered image is never stored.
    const items: (DeliveredImage | WithheldImage)[] = [];
    for (const [index, image] of output.images.entries()) {
      const { results, withheld } = await filterImage(image, request, engine.name, operationId);
      if (withheld !== undefined) {
        items.push({ filtered: true, contentFilterResults: results, reason: withheld });
        continue;
      }
      const contentType = contentTypeOf(request.outputFormat);
      if (request.responseFormat === 'url') {
        const stored = await storeImage(image, request, operationId, created);
        items.push({
          filtered: false,
          contentType,
          contentFilterResults: results,
          key: stored.key,
          stored: { id: stored.id, expires: stored.expires },
        });
      } else {
        const bytes = await encodeImage(image, request.outputFormat, request.outputCompression);
        const key = resultKey(context.id, index, request.outputFormat);
        await deps.blobs.put(key, bytes);
        items.push({ filtered: false, contentType, contentFilterResults: results, key, stored: null });
      }
    }
    return { created, revisedPrompt: output.revisedPrompt ?? null, items };
  }

  /** An edit's uploads, read from the blob store and decoded at the output size. */
  async function decodeUploads(
    uploads: NonNullable<JobData['uploads']>,
    request: ImageRequest,
  ): Promise<{ images: RawImage[]; mask: RawImage | null }> {
    const read = async (ref: UploadRef) => {
      const bytes = await deps.blobs.get(ref.key);
      // Swept or lost: not the client's fault, so an internal error (the key goes to the log only).
      if (bytes === null) throw new Error(`the upload ${ref.key} is not in the blob store`);
      return { ...ref, bytes };
    };
    const images = [];
    for (const ref of uploads.images) images.push(await read(ref));
    const mask = uploads.mask ? await read(uploads.mask) : null;
    return decodeEditUploads({ images, mask, maxInputPixels: uploads.maxInputPixels }, request.width, request.height);
  }

  /**
   * The engine's progress, reported as the job's. With `stream` and `partial_images`, the previews
   * that are due become partial images: filtered (a blocked preview is not sent and takes no
   * index), encoded and stored under transient keys, off the engine's progress callback so they
   * never hold up its next step. One chain keeps the reports in order; `settled` waits for it.
   * Only a streamed request's client receives progress, so other jobs report none: on a shared queue
   * each report is a write to Redis and an event every listening API node reads.
   */
  function progressReporter(request: ImageRequest, engine: string, context: JobContext) {
    if (!request.stream) return { onProgress: () => {}, settled: () => Promise.resolve() };
    const wanted = request.partialImages;
    const planned = new Array<number>(request.n).fill(0);
    const sent = new Array<number>(request.n).fill(0);
    let chain: Promise<void> = Promise.resolve();
    const onProgress = ({ step, totalSteps, previews }: EngineProgress) => {
      const due: { image: number; preview: RawImage }[] = [];
      if (wanted > 0 && previews && step < totalSteps) {
        previews.forEach((preview, image) => {
          // Spread evenly over the steps, as the engine plans its previews (the last step is the final image).
          if (!partialImageDue(step, totalSteps, planned[image]!, wanted)) return;
          planned[image]!++;
          due.push({ image, preview });
        });
      }
      chain = chain.then(async () => {
        const partialImages: NonNullable<JobProgress['partialImages']> = [];
        for (const { image, preview } of due) {
          const verdict = await deps.imageFilter.check(preview, {
            deployment: request.deployment,
            moderation: request.moderation,
            engine,
          });
          if (verdict.blocked) continue; // the final image will fail the filter too
          const bytes = await encodeImage(preview, request.outputFormat, request.outputCompression);
          const partialImageIndex = sent[image]!;
          const key = partialImageKey(context.id, image, partialImageIndex, request.outputFormat);
          await deps.blobs.put(key, bytes);
          sent[image]!++;
          partialImages.push({ image, partialImageIndex, key });
        }
        context.reportProgress(partialImages.length > 0 ? { step, totalSteps, partialImages } : { step, totalSteps });
      });
      // Handled here so a failure waits for `settled` instead of crashing the process.
      chain.catch(() => {});
    };
    return { onProgress, settled: () => chain };
  }

  /** The image filter's verdict; a withheld image is counted and logged with the filter and its reason. */
  async function filterImage(
    image: EngineOutput['images'][number],
    request: ImageRequest,
    engine: string,
    operationId: string | null,
  ): Promise<{ results: ContentFilterResults; withheld?: string }> {
    const verdict = await deps.imageFilter.check(image, {
      deployment: request.deployment,
      moderation: request.moderation,
      engine,
    });
    if (!verdict.blocked) return { results: verdict.results };
    metrics?.imageFiltered(request.deployment);
    const reason = verdict.reason ?? `the image filter (${deps.imageFilter.name}) blocked it`;
    deps.log?.warn(
      {
        deployment: request.deployment,
        engine,
        operationId,
        filter: deps.imageFilter.name,
        reason,
        annotations: verdict.results,
      },
      `generated image withheld: ${reason}`,
    );
    return { results: verdict.results, withheld: reason };
  }

  /**
   * For URLs: the image encoded into the blob store and the record that points at it, expiring after
   * the URL TTL. The record is written while the image is encoded and uploaded, not after (on a shared
   * database that takes a round trip and a wake-up of its server off each answer: about 0.6 ms per image
   * on 2 vCPUs, measured); the link reaches its client only when both are written. When one fails the
   * other is undone, at best effort: what is left (or what a crash leaves) is bytes without a record,
   * which the orphan sweep removes, or a record whose link was never handed out, swept when it expires.
   */
  async function storeImage(
    image: EngineOutput['images'][number],
    request: ImageRequest,
    operationId: string | null,
    created: number,
  ): Promise<StoredImage> {
    const imageId = randomUUID();
    const key = imageKey(imageId, request.outputFormat);
    const expires = created + deps.imageUrlTtlSeconds;
    const [written, recorded] = await Promise.allSettled([
      encodeImage(image, request.outputFormat, request.outputCompression).then((bytes) => deps.blobs.put(key, bytes)),
      deps.store.putImage({
        id: imageId,
        key,
        contentType: contentTypeOf(request.outputFormat),
        width: image.width,
        height: image.height,
        deployment: request.deployment,
        operationId,
        created,
        expires,
      }),
    ]);
    const failed = [written, recorded].find((outcome) => outcome.status === 'rejected');
    if (failed) {
      if (written.status === 'fulfilled') await deps.blobs.delete(key).catch(() => {});
      if (recorded.status === 'fulfilled') await deps.store.deleteImage(imageId).catch(() => {});
      throw failed.reason;
    }
    return { id: imageId, key, expires };
  }
}
