import { extensionOf } from '../codec/index.ts';
import type { OutputFormat } from '../contract/request.ts';

/**
 * The BlobStore key of an image's bytes. The sweeper finds orphaned bytes by reading the image id
 * back out of the key (imageIdOfKey), so every writer must build keys with this function.
 */
export function imageKey(imageId: string, format: OutputFormat): string {
  return `images/${imageId}.${extensionOf(format)}`;
}

/** The image id in a key made by imageKey, or null for any other key. */
export function imageIdOfKey(key: string): string | null {
  const match = /^images\/([^/]+)\.(png|jpg|webp)$/.exec(key);
  return match ? match[1]! : null;
}
