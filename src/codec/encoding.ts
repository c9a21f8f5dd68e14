/**
 * The one place where pixels become PNG/JPEG/WebP bytes and uploads become pixels (encode once,
 * decode once). Engines and routes only ever see RawImage.
 */
import sharp from 'sharp';

import { ApiError, errors } from '../contract/errors.ts';
import type { OutputFormat, RawImage } from '../contract/request.ts';

export type UploadFormat = 'png' | 'jpeg' | 'webp';

const CONTENT_TYPES: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };
const EXTENSIONS: Record<OutputFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };
const FORMAT_NAMES: Record<UploadFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WEBP' };

export function contentTypeOf(format: OutputFormat): string {
  return CONTENT_TYPES[format];
}

/** File extension without the dot ('jpeg' → 'jpg'). */
export function extensionOf(format: OutputFormat): string {
  return EXTENSIONS[format];
}

/** Pixels → the PNG, JPEG or WebP file a client receives; `compression` is the wire's output_compression. */
export async function encodeImage(image: RawImage, format: OutputFormat, compression: number): Promise<Buffer> {
  const input = sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } });
  // The wire's output_compression is 0–100 with 100 = best; encoders reject quality 0.
  const quality = Math.min(100, Math.max(1, Math.round(compression)));
  switch (format) {
    case 'png':
      return input.png({ compressionLevel: 6 }).toBuffer();
    case 'jpeg':
      // JPEG has no alpha: composite onto white, as a viewer would show a transparent PNG.
      return input.flatten({ background: '#ffffff' }).jpeg({ quality }).toBuffer();
    case 'webp':
      return input.webp({ quality }).toBuffer();
  }
}

/** The format from the magic bytes alone; a client's content type is never trusted. */
export function sniffImageFormat(bytes: Buffer): UploadFormat | null {
  const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && PNG.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') {
    return 'webp';
  }
  return null;
}

export interface DecodeUploadOptions {
  /** Wire name of the field, named in every error ("image", "image[]", "mask"). */
  param: string;
  /** Largest width × height accepted; checked from the header before any pixel is decoded. */
  maxPixels: number;
  /** Formats accepted for this field; all three when omitted. */
  allowed?: UploadFormat[];
  /** Largest upload in bytes, when the caller has not already enforced one. */
  maxBytes?: number;
}

export interface DecodedUpload {
  /** RGBA, 8 bits per channel. */
  image: RawImage;
  format: UploadFormat;
  /** Whether the source had an alpha channel (a PNG without one reports false). */
  hasAlpha: boolean;
}

/** What an upload's header says, read without decoding a pixel. */
export interface ProbedUpload {
  format: UploadFormat;
  width: number;
  height: number;
  /** Whether the source has an alpha channel (a PNG without one reports false). */
  hasAlpha: boolean;
}

/**
 * Check an upload from its magic bytes and header alone: format, dimensions against `maxPixels`.
 * Throws an invalid_image / payload_too_large ApiError naming the field. Nothing is decoded, so a
 * request can be refused (or admitted) before its pixels take any memory.
 */
export async function probeUpload(bytes: Buffer, options: DecodeUploadOptions): Promise<ProbedUpload> {
  const { param, maxPixels } = options;
  const allowed = options.allowed ?? ['png', 'jpeg', 'webp'];
  if (options.maxBytes !== undefined && bytes.length > options.maxBytes) {
    throw errors.payloadTooLarge(param, options.maxBytes);
  }
  const format = sniffImageFormat(bytes);
  if (format === null || !allowed.includes(format)) {
    throw errors.invalidImage(
      param,
      `Invalid file '${param}': unsupported format. Supported formats are ${listFormats(allowed)}.`,
    );
  }
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    // metadata() reads only the header, so a decompression bomb is refused below before it
    // inflates. No pixel limit here: sharp's own refusal would read as "corrupt".
    meta = await sharp(bytes, { failOn: 'warning', limitInputPixels: false }).metadata();
  } catch {
    throw unreadable(param, format);
  }
  // EXIF orientations 5–8 swap the sides once the image is turned upright (autoOrient below).
  const turned = (meta.orientation ?? 1) >= 5;
  const width = turned ? meta.height : meta.width;
  const height = turned ? meta.width : meta.height;
  if (width * height > maxPixels) {
    throw errors.invalidImage(
      param,
      `Invalid file '${param}': the image is ${width}x${height} pixels, more than the limit of ${maxPixels} pixels.`,
    );
  }
  return { format, width, height, hasAlpha: meta.hasAlpha };
}

/** Upload bytes → RGBA pixels, or an invalid_image / payload_too_large ApiError naming the field. */
export async function decodeUpload(bytes: Buffer, options: DecodeUploadOptions): Promise<DecodedUpload> {
  const { format, hasAlpha } = await probeUpload(bytes, options);
  try {
    // failOn 'warning' (sharp's default, spelled out) turns truncated or corrupt data into an error.
    // The same pixel limit inside libvips too, as a second line of defence.
    const { data, info } = await sharp(bytes, {
      failOn: 'warning',
      limitInputPixels: options.maxPixels,
      autoOrient: true,
    })
      // Grey and CMYK sources become sRGB so that ensureAlpha always yields exactly 4 channels.
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`expected 4 channels, got ${info.channels}`);
    return { image: { width: info.width, height: info.height, channels: 4, data }, format, hasAlpha };
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw unreadable(options.param, format);
  }
}

function unreadable(param: string, format: UploadFormat): ApiError {
  return errors.invalidImage(
    param,
    `Invalid file '${param}': the ${FORMAT_NAMES[format]} data is corrupt or truncated and could not be read.`,
  );
}

function listFormats(formats: UploadFormat[]): string {
  const names = formats.map((f) => FORMAT_NAMES[f]);
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** Brings an edit input (or mask) to the output size; returns RGBA. */
export async function resizeTo(
  image: RawImage,
  width: number,
  height: number,
  fit: 'fill' | 'cover',
): Promise<RawImage> {
  const { data, info } = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels },
  })
    .resize(width, height, { fit })
    .ensureAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 4, data };
}
