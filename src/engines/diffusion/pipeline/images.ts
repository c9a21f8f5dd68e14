// Pixels ↔ tensors for the VAE, masks at latent resolution, and cheap latent previews.
import type { RawImage } from '../../../contract/request.ts';

/** RGB(A) 8-bit → [1, 3, H, W] in [-1, 1] (diffusers `image_processor.preprocess`); alpha is ignored. */
export function imageToTensor(image: RawImage): Float32Array {
  const { width, height, channels, data } = image;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = data[i * channels + c]! / 127.5 - 1;
  }
  return out;
}

/**
 * [3, H, W] in [-1, 1] at `offset` → RGB 8-bit: (x/2 + 0.5)·255, clamped and rounded half to even,
 * as diffusers' numpy postprocess does. Uint8ClampedArray does both in the store, one plane at a time.
 */
export function tensorToImage(values: Float32Array, offset: number, width: number, height: number): RawImage {
  const plane = width * height;
  const out = new Uint8ClampedArray(plane * 3);
  for (let c = 0; c < 3; c++) {
    const base = offset + c * plane;
    for (let i = 0, j = c; i < plane; i++, j += 3) out[j] = (values[base + i]! + 1) * 127.5;
  }
  return { width, height, channels: 3, data: Buffer.from(out.buffer, out.byteOffset, out.byteLength) };
}

/**
 * Repaint mask (1 = repaint) per pixel from Azure's convention: alpha 0 marks the area to edit.
 * Alpha below half counts as transparent, as the diffusers mask binarisation does at 0.5.
 */
export function repaintMask(mask: RawImage): Uint8Array {
  const { width, height, channels, data } = mask;
  const out = new Uint8Array(width * height);
  if (channels !== 4) return out;
  for (let i = 0; i < out.length; i++) out[i] = data[i * 4 + 3]! < 128 ? 1 : 0;
  return out;
}

/**
 * The image with the repaint area blacked out: diffusers' `masked_image = image * (mask < 0.5)`, as a [-1, 1] tensor.
 */
export function maskedImageTensor(image: Float32Array, mask: Uint8Array): Float32Array {
  const plane = mask.length;
  const out = new Float32Array(image.length);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[c * plane + i] = mask[i] ? 0 : image[c * plane + i]!;
  }
  return out;
}

/**
 * The mask at latent size, nearest neighbour, as diffusers resizes it (`interpolate(mask, size=latent)`
 * with the default nearest mode picks the source pixel at floor(y·scale)).
 */
export function latentMask(mask: Uint8Array, width: number, height: number, scale: number): Float32Array {
  const lw = width / scale;
  const lh = height / scale;
  const out = new Float32Array(lw * lh);
  for (let y = 0; y < lh; y++) {
    for (let x = 0; x < lw; x++) out[y * lw + x] = mask[y * scale * width + x * scale]!;
  }
  return out;
}

/**
 * Approximate RGB of SD latents by one linear map per channel (the "latent preview" factors used by
 * ComfyUI and AUTOMATIC1111), at latent resolution. Costs microseconds, so every step can stream a
 * partial image without a VAE decode. Rows: latent channels; columns: R, G, B.
 */
const PREVIEW_FACTORS = {
  sd: [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
  ],
  sdxl: [
    [0.392, 0.4054, 0.4549],
    [-0.2634, -0.0196, 0.0653],
    [0.0568, 0.1687, -0.0755],
    [-0.3112, -0.2359, -0.2076],
  ],
} as const;

export function latentPreview(
  latents: Float32Array,
  offset: number,
  width: number,
  height: number,
  kind: 'sd' | 'sdxl',
): RawImage {
  const factors = PREVIEW_FACTORS[kind];
  const plane = width * height;
  const data = Buffer.alloc(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let l = 0; l < 4; l++) v += latents[offset + l * plane + i]! * factors[l]![c]!;
      const u = (v + 1) / 2;
      data[i * 3 + c] = Math.round(255 * (u < 0 ? 0 : u > 1 ? 1 : u));
    }
  }
  return { width, height, channels: 3, data };
}
