import assert from 'node:assert/strict';
import { test } from 'node:test';

import sharp from 'sharp';

import {
  contentTypeOf,
  decodeUpload,
  encodeImage,
  extensionOf,
  resizeTo,
  sniffImageFormat,
} from '../../src/codec/index.ts';
import { ApiError } from '../../src/contract/errors.ts';
import type { RawImage } from '../../src/contract/request.ts';
import { MAX_OUTPUT_SIDE } from '../../src/contract/validate.ts';

/** An RGBA image: left half opaque red, right half fully transparent. */
function halfTransparent(width = 8, height = 4): RawImage {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width / 2; x++) data.set([255, 0, 0, 255], (y * width + x) * 4);
  }
  return { width, height, channels: 4, data };
}

/** RGB noise, so that JPEG quality visibly changes the size. */
function noise(width: number, height: number): RawImage {
  const data = Buffer.alloc(width * height * 3);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    data[i] = s >> 16;
  }
  return { width, height, channels: 3, data };
}

const pixel = (img: RawImage, x: number, y: number) => [
  ...img.data.subarray((y * img.width + x) * img.channels, (y * img.width + x + 1) * img.channels),
];

function assertInvalidImage(param: string) {
  return (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'invalid_image');
    assert.equal(error.param, param);
    return true;
  };
}

const opts = { param: 'image', maxPixels: 4096 * 4096 };

test('each output format encodes to bytes of that format, at the same size', async () => {
  for (const format of ['png', 'jpeg', 'webp'] as const) {
    const bytes = await encodeImage(halfTransparent(), format, 100);
    assert.equal(sniffImageFormat(bytes), format);
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], [format, 8, 4]);
  }
});

test('content types and file extensions follow the format', () => {
  assert.deepEqual(
    (['png', 'jpeg', 'webp'] as const).map((f) => [contentTypeOf(f), extensionOf(f)]),
    [
      ['image/png', 'png'],
      ['image/jpeg', 'jpg'],
      ['image/webp', 'webp'],
    ],
  );
});

test('a PNG keeps transparency exactly', async () => {
  const source = halfTransparent();
  const decoded = await decodeUpload(await encodeImage(source, 'png', 100), opts);
  assert.equal(decoded.format, 'png');
  assert.equal(decoded.hasAlpha, true);
  assert.deepEqual(decoded.image, source);
});

test('a WEBP keeps transparency', async () => {
  const decoded = await decodeUpload(await encodeImage(halfTransparent(), 'webp', 100), opts);
  assert.equal(decoded.hasAlpha, true);
  assert.equal(pixel(decoded.image, 7, 0)[3], 0);
  assert.equal(pixel(decoded.image, 0, 0)[3], 255);
});

test('a JPEG flattens transparency onto white', async () => {
  const decoded = await decodeUpload(await encodeImage(halfTransparent(16, 16), 'jpeg', 100), opts);
  assert.equal(decoded.hasAlpha, false);
  const [r, g, b, a] = pixel(decoded.image, 15, 8);
  assert.ok(r! >= 250 && g! >= 250 && b! >= 250, `expected white, got ${r},${g},${b}`);
  assert.equal(a, 255);
});

test('output_compression 10 gives a smaller JPEG and WEBP than 100', async () => {
  const source = noise(64, 64);
  for (const format of ['jpeg', 'webp'] as const) {
    const low = await encodeImage(source, format, 10);
    const high = await encodeImage(source, format, 100);
    assert.ok(low.length < high.length, `${format}: ${low.length} should be < ${high.length}`);
  }
  // 0 is a legal wire value; the encoder gets its lowest quality instead of an error.
  assert.equal(sniffImageFormat(await encodeImage(source, 'jpeg', 0)), 'jpeg');
});

test('sniffing reads magic bytes only', () => {
  assert.equal(sniffImageFormat(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'png');
  assert.equal(sniffImageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), 'jpeg');
  assert.equal(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1')), 'webp');
  assert.equal(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1')), null);
  assert.equal(sniffImageFormat(Buffer.from('GIF89a')), null);
  assert.equal(sniffImageFormat(Buffer.alloc(0)), null);
});

test('an RGB PNG decodes to RGBA and reports no alpha', async () => {
  const bytes = await sharp({ create: { width: 3, height: 2, channels: 3, background: '#102030' } })
    .png()
    .toBuffer();
  const decoded = await decodeUpload(bytes, opts);
  assert.equal(decoded.hasAlpha, false);
  assert.deepEqual([decoded.image.width, decoded.image.height, decoded.image.channels], [3, 2, 4]);
  assert.deepEqual(pixel(decoded.image, 2, 1), [0x10, 0x20, 0x30, 255]);
});

test('a greyscale PNG decodes to four channels', async () => {
  const bytes = await sharp(Buffer.alloc(4, 200), { raw: { width: 2, height: 2, channels: 1 } })
    .png()
    .toBuffer();
  const decoded = await decodeUpload(bytes, opts);
  assert.equal(decoded.image.channels, 4);
  assert.equal(decoded.image.data.length, 16);
  assert.deepEqual(pixel(decoded.image, 1, 1), [200, 200, 200, 255]);
});

test('text bytes are rejected as invalid_image naming the field', async () => {
  await assert.rejects(
    decodeUpload(Buffer.from('hello, not an image'), { ...opts, param: 'mask' }),
    assertInvalidImage('mask'),
  );
});

test('a PNG header followed by garbage is rejected as invalid_image', async () => {
  const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]);
  await assert.rejects(decodeUpload(bytes, opts), assertInvalidImage('image'));
});

test('a truncated PNG is rejected as invalid_image', async () => {
  const whole = await encodeImage(noise(64, 64), 'png', 100);
  await assert.rejects(decodeUpload(whole.subarray(0, whole.length >> 1), opts), assertInvalidImage('image'));
});

test('a GIF is rejected as invalid_image', async () => {
  const gif = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } })
    .gif()
    .toBuffer();
  await assert.rejects(decodeUpload(gif, { ...opts, param: 'image[]' }), assertInvalidImage('image[]'));
});

test('a format outside the allowed list is rejected as invalid_image', async () => {
  const jpeg = await encodeImage(halfTransparent(), 'jpeg', 90);
  await assert.rejects(decodeUpload(jpeg, { ...opts, param: 'mask', allowed: ['png'] }), assertInvalidImage('mask'));
});

test('a 5000x5000 PNG over maxPixels is rejected from its header, without decoding', async () => {
  const bomb = await sharp({ create: { width: 5000, height: 5000, channels: 3, background: '#000' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  assert.ok(bomb.length < 200_000, `the test image should be small on the wire, got ${bomb.length} bytes`);
  // Zero the compressed pixel data after the header chunks: a decoder would fail on it as corrupt,
  // so the pixel-limit message can only come from reading the header.
  const headerOnly = Buffer.from(bomb);
  headerOnly.fill(0, 100, headerOnly.length - 12);
  await assert.rejects(decodeUpload(headerOnly, { param: 'image', maxPixels: 4096 * 4096 }), (error: unknown) => {
    assertInvalidImage('image')(error);
    assert.match((error as ApiError).message, /5000x5000 pixels, more than the limit of 16777216 pixels/);
    return true;
  });
});

test('an upload over maxBytes is rejected as payload_too_large naming the field', async () => {
  const png = await encodeImage(halfTransparent(), 'png', 100);
  await assert.rejects(decodeUpload(png, { ...opts, maxBytes: 10 }), (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.deepEqual([error.status, error.code, error.param], [413, 'payload_too_large', 'image']);
    return true;
  });
});

test('a PNG is accepted from its bytes alone, whatever the client called it', async () => {
  const png = await encodeImage(halfTransparent(), 'png', 100);
  const decoded = await decodeUpload(png, { param: 'image', maxPixels: 32 });
  assert.equal(decoded.format, 'png');
});

test('resizeTo fills the exact output size and returns RGBA', async () => {
  const filled = await resizeTo(noise(10, 20), 16, 8, 'fill');
  assert.deepEqual([filled.width, filled.height, filled.channels, filled.data.length], [16, 8, 4, 16 * 8 * 4]);
  const covered = await resizeTo(halfTransparent(8, 4), 4, 4, 'cover');
  assert.deepEqual([covered.width, covered.height, covered.channels], [4, 4, 4]);
  // Cover crops the middle: the left column is red, the right column transparent.
  assert.deepEqual(pixel(covered, 0, 0), [255, 0, 0, 255]);
  assert.equal(pixel(covered, 3, 0)[3], 0);
});

test('MAX_OUTPUT_SIDE matches what the encoders write: each at its limit, and refused one pixel beyond', async () => {
  for (const format of ['webp', 'jpeg'] as const) {
    const side = MAX_OUTPUT_SIDE[format];
    const at: RawImage = { width: side, height: 1, channels: 4, data: Buffer.alloc(side * 4, 200) };
    assert.ok((await encodeImage(at, format, 90)).length > 0, `${format} at ${side}`);
    const beyond: RawImage = { width: 1, height: side + 1, channels: 4, data: Buffer.alloc((side + 1) * 4, 200) };
    await assert.rejects(encodeImage(beyond, format, 90), `${format} at ${side + 1}`);
  }
});
