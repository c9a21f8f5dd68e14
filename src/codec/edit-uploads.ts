/**
 * An edit's uploads between the request and the job: checked from their headers when the request
 * arrives, kept compressed while the job waits in the queue (the admitting side puts them in the
 * blob store; the job carries their keys and what their headers told), and decoded only when the
 * job runs, from those bytes. A burst of large edits therefore holds its uploads' bytes, not their
 * pixels, until the queue starts each one (docs/lifecycle.md, "Admission").
 */
import { errors } from '../contract/errors.ts';
import { hasTransparentPixel, type RawImage } from '../contract/request.ts';
import { decodeUpload, type ProbedUpload, probeUpload, resizeTo } from './encoding.ts';

export interface PendingUpload extends ProbedUpload {
  bytes: Buffer;
}

export interface EditUploads {
  /** The images to edit, the first being the one edited; compressed, as sent. */
  images: PendingUpload[];
  mask: PendingUpload | null;
  /** The pixel limit each upload was checked against, applied again by the decoder. */
  maxInputPixels: number;
}

/**
 * Read the uploads' headers and check everything that needs no pixel: count, formats, sizes, the mask's alpha and size.
 */
export async function probeEditUploads(
  images: Buffer[],
  mask: Buffer | null,
  limits: { maxInputPixels: number; maxImages: number },
): Promise<EditUploads> {
  const maxPixels = limits.maxInputPixels;
  if (images.length === 0) throw errors.missingParameter('image');
  if (images.length > limits.maxImages) {
    throw errors.invalidParameter('image', `At most ${limits.maxImages} images can be edited at once.`);
  }
  const probed: PendingUpload[] = [];
  for (const bytes of images) probed.push({ bytes, ...(await probeUpload(bytes, { param: 'image', maxPixels })) });
  const first = probed[0]!;
  let probedMask: PendingUpload | null = null;
  if (mask) {
    probedMask = { bytes: mask, ...(await probeUpload(mask, { param: 'mask', maxPixels, allowed: ['png'] })) };
    if (!probedMask.hasAlpha)
      throw errors.invalidImage('mask', 'The mask must be a PNG with an alpha channel; alpha 0 marks where to edit.');
    if (probedMask.width !== first.width || probedMask.height !== first.height) {
      throw errors.invalidImage(
        'mask',
        `The mask is ${probedMask.width}x${probedMask.height}; it must be the size of the image, ${first.width}x${first.height}.`,
      );
    }
  }
  return { images: probed, mask: probedMask, maxInputPixels: maxPixels };
}

/**
 * The most decoded pixels the job holds at once, as an upper bound: every upload at its own size,
 * its copy at the output size when it has to be resized, and the `n` output images.
 */
export function decodedPixelsOf(uploads: EditUploads, output: { width: number; height: number; n: number }): number {
  const outPixels = output.width * output.height;
  const all = uploads.mask ? [...uploads.images, uploads.mask] : uploads.images;
  let pixels = output.n * outPixels;
  for (const upload of all) {
    pixels += upload.width * upload.height;
    if (upload.width !== output.width || upload.height !== output.height) pixels += outPixels;
  }
  return pixels;
}

/**
 * Decode the uploads (their probed headers with the bytes read back) and bring them to the output size. With `size` auto (the default) or equal to
 * the input's size nothing is resized, so pixels outside the mask come back exactly as sent. Each
 * full-size decode is dropped as soon as its resized copy exists.
 */
export async function decodeEditUploads(
  uploads: EditUploads,
  width: number,
  height: number,
): Promise<{ images: RawImage[]; mask: RawImage | null }> {
  const maxPixels = uploads.maxInputPixels;
  let mask: RawImage | null = null;
  if (uploads.mask) {
    const decoded = await decodeUpload(uploads.mask.bytes, { param: 'mask', maxPixels, allowed: ['png'] });
    // Deliberate: a mask without a transparent pixel asks for no change at all, which is almost
    // always an inverted or wrong mask; say so rather than return the input (docs/deviations.md).
    if (!hasTransparentPixel(decoded.image)) {
      throw errors.invalidImage(
        'mask',
        'The mask has no transparent pixels, so there is nothing to edit: alpha 0 marks the area to change.',
      );
    }
    mask = await fit(decoded.image, width, height, 'fill');
  }
  const images: RawImage[] = [];
  for (const upload of uploads.images) {
    const decoded = await decodeUpload(upload.bytes, { param: 'image', maxPixels });
    images.push(await fit(decoded.image, width, height, 'cover'));
  }
  return { images, mask };
}

function fit(image: RawImage, width: number, height: number, mode: 'fill' | 'cover'): Promise<RawImage> | RawImage {
  return image.width === width && image.height === height ? image : resizeTo(image, width, height, mode);
}
