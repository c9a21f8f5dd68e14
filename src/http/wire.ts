import type { FastifyRequest } from 'fastify';

import type { PromptFilterResults } from '../contract/annotations.ts';
import { errors, operationErrors } from '../contract/errors.ts';
import type { Family } from '../contract/families.ts';
import type { ImageRequest } from '../contract/request.ts';
import { estimateUsage } from '../contract/usage.ts';
import type { JobResult } from '../jobs/job-contract.ts';
import type { ImageRecord, OperationRecord } from '../jobs/operation-store.ts';
import type { Services } from './services.ts';

/** Base of absolute URLs: EASEL_PUBLIC_URL, else the scheme and host the client addressed. */
export function publicBase(request: FastifyRequest, services: Services): string {
  return services.config.publicUrl ?? `${request.protocol}://${request.host}`;
}

/** An expiring link to a stored image (Azure's is a blob SAS URL valid 24 hours); services.imageLinks picks the kind. */
export function imageUrl(
  base: string,
  services: Services,
  image: Pick<ImageRecord, 'key' | 'expires'>,
): Promise<string> {
  return services.imageLinks.urlOf(base, image);
}

/**
 * A filtered image is never returned: Azure fails the whole request (docs/azure-api.md, "Errors"),
 * naming here the filter, category and annotations of the first image withheld.
 */
export function refuseIfWithheld(result: JobResult): void {
  const withheld = result.items.find((item) => item.filtered);
  if (withheld) throw errors.generatedImageFiltered(withheld.reason, withheld.contentFilterResults);
}

/**
 * The encoded bytes of a result's images that an answer carries, by item (null where it carries
 * none): the b64_json ones, and with `stored` (a stream) the stored ones too. Each transient key of
 * the result is read once and deleted, whatever happens next: a result with a withheld image (which
 * is refused, so nothing is read), or a key that is missing (swept or lost: an internal error).
 */
export async function takeImages(
  request: FastifyRequest,
  result: JobResult,
  options: { stored?: boolean } = {},
): Promise<(Buffer | null)[]> {
  const { blobs } = request.server.services;
  const refused = result.items.some((item) => item.filtered);
  // Reads and deletes go out together: on a bucket each is a round trip of several milliseconds.
  try {
    return await Promise.all(
      result.items.map(async (item) => {
        if (refused || item.filtered || (item.stored !== null && !options.stored)) return null;
        const bytes = await blobs.get(item.key);
        if (bytes === null) {
          request.log.error({ key: item.key }, 'a generated image is missing from the blob store');
          throw errors.internal(request.id);
        }
        return bytes;
      }),
    );
  } finally {
    const transient = result.items.flatMap((item) => (!item.filtered && item.stored === null ? [item.key] : []));
    await Promise.all(
      transient.map((key) =>
        blobs.delete(key).catch((error: unknown) => request.log.warn({ key, err: error }, 'could not delete an image')),
      ),
    );
  }
}

/** The bytes takeImages read for `index`; it reads every image the answer carries. */
export function bytesAt(images: (Buffer | null)[], index: number): Buffer {
  const bytes = images[index];
  if (!bytes) throw new Error(`the bytes of image ${index} were not read`);
  return bytes;
}

/** The body of a sync generations/edits answer (docs/azure-api.md, "Responses"). */
export async function imagesResponse(
  family: Family,
  request: ImageRequest,
  result: JobResult,
  images: (Buffer | null)[],
  promptResults: PromptFilterResults,
  urlOf: (image: Pick<ImageRecord, 'key' | 'expires'>) => Promise<string>,
): Promise<Record<string, unknown>> {
  refuseIfWithheld(result);
  // Links first: a presigned one is computed asynchronously.
  const urls = await Promise.all(
    result.items.map((item) =>
      !item.filtered && item.stored !== null
        ? urlOf({ key: item.key, expires: item.stored.expires })
        : Promise.resolve(null),
    ),
  );
  const data = result.items.map((item, index) => {
    if (item.filtered) throw new Error('a withheld image reached the answer');
    const entry: Record<string, unknown> =
      item.stored !== null ? { url: urls[index] } : { b64_json: bytesAt(images, index).toString('base64') };
    if (family.revisesPrompt) entry.revised_prompt = result.revisedPrompt ?? request.prompt;
    if (family.annotatesItems) {
      entry.content_filter_results = item.contentFilterResults;
      entry.prompt_filter_results = promptResults;
    }
    return entry;
  });
  const body: Record<string, unknown> = { created: result.created, data };
  if (family.reportsUsage) {
    Object.assign(body, gptImageFields(request));
    body.usage = estimateUsage(request);
  }
  return body;
}

/** The v1 response fields gpt-image-1 adds (docs/azure-api.md, "Responses": `AzureImagesResponse`). */
export function gptImageFields(request: ImageRequest) {
  return {
    background: request.transparentBackground ? 'transparent' : 'opaque',
    output_format: request.outputFormat,
    quality: request.quality ?? 'high',
    size: `${request.width}x${request.height}`,
  };
}

/** A DALL-E 2 operation as GET answers it (docs/azure-api.md, "DALL-E 2 operations"). */
export function operationResponse(
  operation: OperationRecord,
  urlOf: (imageId: string) => string | null,
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: operation.id,
    created: operation.created,
    expires: operation.expires,
    status: operation.status,
  };
  if (operation.status === 'succeeded' && operation.result) {
    body.result = {
      created: operation.result.created,
      data: operation.result.items.map((item) => {
        if ('error' in item) return { error: item.error };
        const url = urlOf(item.imageId);
        return url ? { url } : { error: operationErrors.imageExpired };
      }),
    };
  }
  if (operation.error) body.error = operation.error;
  return body;
}
