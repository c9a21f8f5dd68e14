import type { RawImage } from '../../contract/request.ts';

/**
 * A coarse copy of `image`: each `block`×`block` square becomes its average colour, weighted by
 * alpha so transparent pixels do not darken their neighbours. Two passes over the pixels, which
 * is cheap enough to run once per simulated step.
 */
export function blockAverage(image: RawImage, block: number): RawImage {
  const { width, height, data } = image;
  const out = Buffer.alloc(width * height * 4);
  const columns = Math.ceil(width / block);
  const sums = new Float64Array(columns * 4);
  const rowBytes = width * 4;
  for (let top = 0; top < height; top += block) {
    const bottom = Math.min(height, top + block);
    sums.fill(0);
    for (let y = top; y < bottom; y++) {
      for (let x = 0, i = y * rowBytes; x < width; x++, i += 4) {
        const a = data[i + 3] as number;
        const c = ((x / block) | 0) * 4;
        sums[c] = (sums[c] as number) + (data[i] as number) * a;
        sums[c + 1] = (sums[c + 1] as number) + (data[i + 1] as number) * a;
        sums[c + 2] = (sums[c + 2] as number) + (data[i + 2] as number) * a;
        sums[c + 3] = (sums[c + 3] as number) + a;
      }
    }
    // Paint the first row of this band, then copy it down: rows of a band are identical.
    const first = top * rowBytes;
    for (let column = 0; column < columns; column++) {
      const c = column * 4;
      const alphaSum = sums[c + 3] as number;
      const count = (Math.min(width, (column + 1) * block) - column * block) * (bottom - top);
      const rgb = alphaSum > 0 ? [0, 1, 2].map((k) => (sums[c + k] as number) / alphaSum + 0.5) : [0, 0, 0];
      const alpha = alphaSum / count + 0.5;
      for (let x = column * block, i = first + x * 4; x < Math.min(width, (column + 1) * block); x++, i += 4) {
        out[i] = rgb[0] as number;
        out[i + 1] = rgb[1] as number;
        out[i + 2] = rgb[2] as number;
        out[i + 3] = alpha;
      }
    }
    for (let y = top + 1; y < bottom; y++) out.copyWithin(y * rowBytes, first, first + rowBytes);
  }
  return { width, height, channels: 4, data: out };
}
