/**
 * Where a job's short-lived files live in the blob store, all under `transient/<jobId>/`: the edit
 * uploads the admitting side writes, and the partial images and b64_json results the running side
 * writes. Each is read once by the other side, which deletes it (docs/scale-out.md, "The job
 * contract"); what a crash leaves behind is swept by age.
 */
import { extensionOf } from '../codec/index.ts';
import type { OutputFormat } from '../contract/request.ts';
import { TRANSIENT_PREFIX } from './job-contract.ts';

/** An edit upload: `image` is the index among the images, or 'mask'. */
export function uploadKey(jobId: string, image: number | 'mask'): string {
  return `${TRANSIENT_PREFIX}${jobId}/${image === 'mask' ? 'mask' : `upload-${image}`}`;
}

/** The `index`-th partial image (0-based) of output image `image`, encoded. */
export function partialImageKey(jobId: string, image: number, index: number, format: OutputFormat): string {
  return `${TRANSIENT_PREFIX}${jobId}/partial-${image}-${index}.${extensionOf(format)}`;
}

/** Output image `image` of a b64_json answer, encoded. */
export function resultKey(jobId: string, image: number, format: OutputFormat): string {
  return `${TRANSIENT_PREFIX}${jobId}/${image}.${extensionOf(format)}`;
}
