/** Upload images for the edit tests, built at test time (no fixtures in the repo). */
import { crc32, deflateSync } from 'node:zlib';

import sharp from 'sharp';

/** RGBA pixels where every pixel differs from its neighbours, so "unchanged" means something. */
export function gradientPixels(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([(x * 7) & 255, (y * 5) & 255, (x + y) & 255, 255], (y * width + x) * 4);
  }
  return data;
}

export function gradientPng(width: number, height: number): Promise<Buffer> {
  return sharp(gradientPixels(width, height), { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer();
}

/** A PNG without an alpha channel. */
export function rgbPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 10, g: 20, b: 30 } } })
    .png()
    .toBuffer();
}

export function jpeg(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 20 } } })
    .jpeg()
    .toBuffer();
}

export function webp(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 20, g: 200, b: 80, alpha: 1 } } })
    .webp()
    .toBuffer();
}

export function gif(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .gif()
    .toBuffer();
}

/** Incompressible RGBA noise: a PNG of about width × height × 4 bytes. */
export function noisePng(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 4);
  let state = 12345;
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return sharp(data, { raw: { width, height, channels: 4 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
}

/**
 * A decompression bomb: a valid single-colour PNG of `size` × `size` pixels that is a few tens of
 * kilobytes on disk. Written by hand (1-bit greyscale, all rows zero) because libvips takes
 * seconds to encode one this large.
 */
export function bombPng(size = 20000): Buffer {
  const row = Buffer.alloc(1 + Math.ceil(size / 8)); // filter byte 0, then 1 bit per pixel
  const raw = Buffer.alloc(row.length * size);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
