import type { FastifyRequest } from 'fastify';

import type { PromptFilterResults } from '../contract/annotations.ts';
import { errors, operationErrors } from '../contract/errors.ts';
import type { Family } from '../contract/families.ts';
import type { ImageRequest } from '../contract/request.ts';
import { estimateUsage } from '../contract/usage.ts';
import type { ImageRecord, OperationRecord } from '../jobs/operation-store.ts';
import type { GenerationResult } from '../jobs/runner.ts';
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
export function refuseIfWithheld(result: GenerationResult): void {
  const withheld = result.items.find((item) => item.filtered);
  if (withheld) throw errors.generatedImageFiltered(withheld.reason, withheld.contentFilterResults);
}

/** The body of a sync generations/edits answer (docs/azure-api.md, "Responses"). */
export async function imagesResponse(
  family: Family,
  request: ImageRequest,
  result: GenerationResult,
  promptResults: PromptFilterResults,
  urlOf: (image: Pick<ImageRecord, 'key' | 'expires'>) => Promise<string>,
): Promise<Record<string, unknown>> {
  refuseIfWithheld(result);
  const items = result.items.filter((item) => !item.filtered);
  // Links first: a presigned one is computed asynchronously.
  const urls = await Promise.all(
    items.map((item) => (item.stored !== null ? urlOf(item.stored) : Promise.resolve(null))),
  );
  const data = items.map((item, i) => {
    const entry: Record<string, unknown> =
      item.stored !== null ? { url: urls[i] } : { b64_json: item.bytes.toString('base64') };
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
