import type { FamilyId } from './families.ts';

/** Decoded pixels: 8-bit, interleaved, row-major. Engines read and write only this. */
export interface RawImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Buffer;
}

/** Whether any pixel is less than half opaque: in a mask (or a maskless edit's image), the area to edit. */
export function hasTransparentPixel(image: RawImage): boolean {
  if (image.channels !== 4) return false;
  for (let i = 3; i < image.data.length; i += 4) if (image.data[i]! < 128) return true;
  return false;
}

export type OutputFormat = 'png' | 'jpeg' | 'webp';

/**
 * The one normalized request that travels from contract/ to the engine: defaults applied, sizes
 * parsed, uploads decoded once (when the job runs). Nothing here knows about HTTP, multipart or base64.
 */
export interface ImageRequest {
  operation: 'generation' | 'edit';
  deployment: string;
  family: FamilyId;
  prompt: string;
  n: number;
  width: number;
  height: number;
  /** Family-specific wire value: standard|hd (dall-e-3), low|medium|high (gpt-image-1), null (dall-e-2). */
  quality: string | null;
  /** dall-e-3 only. */
  style: 'vivid' | 'natural' | null;
  /** The engine must leave the background transparent (alpha 0) where it draws no subject. */
  transparentBackground: boolean;
  outputFormat: OutputFormat;
  /** 0–100; for jpeg and webp, used as the encoder quality (100 = best). */
  outputCompression: number;
  responseFormat: 'url' | 'b64_json';
  /** Derived from the request when the caller gave none, so the same request gives the same bytes. */
  seed: number;
  user: string | null;
  moderation: 'low' | 'auto';
  stream: boolean;
  partialImages: number;
  /** Edits: the input images (the first is the one to edit), as RGBA at the output size. */
  images: RawImage[];
  /**
   * Edits: how many images were sent. Set from the request, while `images` stays empty until the
   * job runs and decodes them (absent on requests built with their pixels).
   */
  inputCount?: number;
  /** Edits: RGBA mask at the output size; alpha 0 marks where to edit. */
  mask: RawImage | null;
  /** Edits (easel extension): 0 < strength ≤ 1, how much may change; null = the engine's default. */
  strength: number | null;
}
