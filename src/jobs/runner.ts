import { randomUUID } from 'node:crypto';

import { contentTypeOf, decodeEditUploads, type EditUploads, encodeImage } from '../codec/index.ts';
import type { ContentFilterResults } from '../contract/annotations.ts';
import type { ImageRequest } from '../contract/request.ts';
import type { Engine, EngineOutput } from '../engines/engine.ts';
import type { ImageFilter } from '../safety/image-filter.ts';
import { type BlobStore, imageKey } from '../storage/index.ts';
import type { ImageRecord, OperationStore } from './operation-store.ts';
import type { JobContext } from './queue.ts';

export type StoredImage = Pick<ImageRecord, 'id' | 'key' | 'expires'>;

/** One generated image after filtering and encoding. */
export type GeneratedItem =
  | {
      filtered: false;
      bytes: Buffer;
      contentType: string;
      /** Set when the image was stored for a URL (response_format url, DALL-E 2 operations). */
      stored: StoredImage | null;
      contentFilterResults: ContentFilterResults;
    }
  | {
      filtered: true;
      contentFilterResults: ContentFilterResults;
      /** Which filter and category withheld it (ImageVerdict.reason), for the answer. */
      reason?: string;
    };

export interface GenerationResult {
  /** Unix seconds. */
  created: number;
  revisedPrompt: string | null;
  items: GeneratedItem[];
}

export interface JobData {
  request: ImageRequest;
  /** Set for DALL-E 2 operations: stored images belong to it and are swept with it. */
  operationId: string | null;
  /** Edits: the uploads, still compressed; decoded into `request.images`/`mask` when the job starts. */
  uploads?: EditUploads;
}

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
  /** Where a withheld image is reported, with the filter and category. */
  log?: { warn(details: object, message: string): void };
  now?: () => number;
}

/**
 * Drives one request through the engine, the image filter, encoding and storage. It knows nothing
 * of HTTP; the handlers shape its result for the wire.
 */
export function createRunner(deps: RunnerDeps) {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));

  const { metrics } = deps;

  return async function run(data: JobData, context: JobContext): Promise<GenerationResult> {
    if (!metrics) return generate(data, context);
    const { deployment } = data.request;
    const started = performance.now();
    let outcome: JobOutcome = 'failed';
    try {
      const result = await generate(data, context);
      outcome = 'succeeded';
      return result;
    } catch (error) {
      if (context.signal.aborted) outcome = 'canceled';
      throw error;
    } finally {
      metrics.jobFinished(deployment, outcome, (performance.now() - started) / 1000);
    }
  };

  async function generate(
    { request: sent, operationId, uploads }: JobData,
    context: JobContext,
  ): Promise<GenerationResult> {
    // 0. Edits: decode the uploads only now, so a waiting job holds compressed bytes, not pixels.
    const request = uploads ? { ...sent, ...(await decodeEditUploads(uploads, sent.width, sent.height)) } : sent;
    context.signal.throwIfAborted();
    // 1. Generate raw pixels; the engine reports progress and checks the signal between steps.
    const engine = deps.engineFor(request.deployment);
    const output = await engine.run(request, {
      onProgress: context.reportProgress,
      signal: context.signal,
    });
    metrics?.imagesGenerated(request.deployment, engine.name, output.images.length, output.stageTimings);
    const created = now();

    // 2. Filter, encode and (for URLs) store each image. A filtered image is never stored.
    const items: GeneratedItem[] = [];
    for (const image of output.images) {
      const { results, withheld } = await filterImage(image, request, engine.name, operationId);
      if (withheld !== undefined) {
        items.push({ filtered: true, contentFilterResults: results, reason: withheld });
        continue;
      }
      const bytes = await encodeImage(image, request.outputFormat, request.outputCompression);
      const stored =
        request.responseFormat === 'url' ? await storeImage(image, bytes, request, operationId, created) : null;
      items.push({
        filtered: false,
        bytes,
        contentType: contentTypeOf(request.outputFormat),
        stored,
        contentFilterResults: results,
      });
    }
    return { created, revisedPrompt: output.revisedPrompt ?? null, items };
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

  /** For URLs: the encoded bytes in the blob store, then the record that points at them, expiring after the URL TTL. */
  async function storeImage(
    image: EngineOutput['images'][number],
    bytes: Buffer,
    request: ImageRequest,
    operationId: string | null,
    created: number,
  ): Promise<StoredImage> {
    const imageId = randomUUID();
    const key = imageKey(imageId, request.outputFormat);
    const expires = created + deps.imageUrlTtlSeconds;
    // Bytes first, record second: a crash in between leaves an orphan the sweeper removes,
    // never a record that points at nothing.
    await deps.blobs.put(key, bytes);
    await deps.store.putImage({
      id: imageId,
      key,
      contentType: contentTypeOf(request.outputFormat),
      width: image.width,
      height: image.height,
      deployment: request.deployment,
      operationId,
      created,
      expires,
    });
    return { id: imageId, key, expires };
  }
}
