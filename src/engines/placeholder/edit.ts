import type { RawImage } from '../../contract/request.ts';
import { EngineError } from '../engine.ts';

/** Without a mask the whole picture is edited; this much of the input shows through (of 255). */
const UNMASKED_INPUT_WEIGHT = 102;

/**
 * Blend `render` (in place) with the input picture: per channel, alpha included,
 * out = input·a/255 + render·(1 − a/255), where a is the mask's alpha (alpha 0 = edit here).
 * Integer arithmetic with exact rounding, so where a = 255 the output is the input byte for byte,
 * as the Azure/OpenAI edit contract promises for the kept region.
 */
export function blendWithInput(render: RawImage, input: RawImage, mask: RawImage | null): void {
  checkSameSize(render, input, 'input image');
  if (mask) checkSameSize(render, mask, 'mask');
  if (mask && mask.channels !== 4) throw new EngineError('the edit mask must have an alpha channel');
  const out = render.data;
  const src = input.data;
  const inChannels = input.channels;
  const pixels = render.width * render.height;
  for (let p = 0; p < pixels; p++) {
    const a = mask ? (mask.data[p * 4 + 3] as number) : UNMASKED_INPUT_WEIGHT;
    if (a === 0) continue;
    const o = p * 4;
    const s = p * inChannels;
    const inverse = 255 - a;
    out[o] = divide255((src[s] as number) * a + (out[o] as number) * inverse);
    out[o + 1] = divide255((src[s + 1] as number) * a + (out[o + 1] as number) * inverse);
    out[o + 2] = divide255((src[s + 2] as number) * a + (out[o + 2] as number) * inverse);
    const inputAlpha = inChannels === 4 ? (src[s + 3] as number) : 255;
    out[o + 3] = divide255(inputAlpha * a + (out[o + 3] as number) * inverse);
  }
}

/** round(x / 255) for 0 ≤ x ≤ 255·255, exactly, without a division. */
function divide255(x: number): number {
  const t = x + 128;
  return (t + (t >> 8)) >> 8;
}

function checkSameSize(render: RawImage, other: RawImage, what: string): void {
  if (other.width !== render.width || other.height !== render.height) {
    throw new EngineError(
      `the ${what} is ${other.width}x${other.height}, expected ${render.width}x${render.height} (the caller resizes it)`,
    );
  }
}

/**
 * The bounding box of the region a mask marks for editing (alpha below half), so the placeholder's
 * card lands where it will be seen; null when the mask marks nothing.
 */
export function editRegion(mask: RawImage): { left: number; top: number; width: number; height: number } | null {
  const { width, height, data, channels } = mask;
  if (channels !== 4) return null;
  let [minX, minY, maxX, maxY] = [width, height, -1, -1];
  // Every 4th pixel of every 4th row is plenty to find a region's extent.
  for (let y = 0; y < height; y += 4) {
    for (let x = 0; x < width; x += 4) {
      if ((data[(y * width + x) * 4 + 3] as number) >= 128) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  if (maxX < 0) return null;
  const [right, bottom] = [Math.min(width, maxX + 4), Math.min(height, maxY + 4)];
  return { left: minX, top: minY, width: right - minX, height: bottom - minY };
}
