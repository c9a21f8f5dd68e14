import type { RawImage } from '../../contract/request.ts';

/**
 * A coarse copy of `image`: each `block`×`block` square becomes the average colour of a grid of
 * samples inside it (about 4×4 per square: a preview does not need every pixel), weighted by
 * alpha so transparent pixels do not darken their neighbours.
 */
export function blockAverage(image: RawImage, block: number): RawImage {
  const { width, height, data } = image;
  const out = Buffer.alloc(width * height * 4);
  const stride = Math.max(1, Math.floor(block / 4));
  const rowBytes = width * 4;
  for (let top = 0; top < height; top += block) {
    const bottom = Math.min(height, top + block);
    const first = top * rowBytes;
    for (let left = 0; left < width; left += block) {
      const right = Math.min(width, left + block);
      let [r, g, b, a, samples] = [0, 0, 0, 0, 0];
      for (let y = top + (stride >> 1); y < bottom; y += stride) {
        for (let x = left + (stride >> 1), i = (y * width + x) * 4; x < right; x += stride, i += stride * 4) {
          const alpha = data[i + 3] as number;
          r += (data[i] as number) * alpha;
          g += (data[i + 1] as number) * alpha;
          b += (data[i + 2] as number) * alpha;
          a += alpha;
          samples++;
        }
      }
      const [pr, pg, pb] = a > 0 ? [r / a + 0.5, g / a + 0.5, b / a + 0.5] : [0, 0, 0];
      const pa = samples > 0 ? a / samples + 0.5 : 0;
      for (let i = first + left * 4; i < first + right * 4; i += 4) {
        out[i] = pr;
        out[i + 1] = pg;
        out[i + 2] = pb;
        out[i + 3] = pa;
      }
    }
    // Every row of a band of squares is the same: paint the first, copy it down.
    for (let y = top + 1; y < bottom; y++) out.copyWithin(y * rowBytes, first, first + rowBytes);
  }
  return { width, height, channels: 4, data: out };
}
