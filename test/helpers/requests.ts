import type { ImageRequest, RawImage } from '../../src/contract/request.ts';

/** A complete generation request with everyday defaults; override only what a test is about. */
export function generationRequest(overrides: Partial<ImageRequest> = {}): ImageRequest {
  return {
    operation: 'generation',
    deployment: 'dall-e-3',
    family: 'dall-e-3',
    prompt: 'a lighthouse on a cliff at dawn, watercolour',
    n: 1,
    width: 1024,
    height: 1024,
    quality: 'standard',
    style: 'vivid',
    transparentBackground: false,
    outputFormat: 'png',
    outputCompression: 100,
    responseFormat: 'url',
    seed: 42,
    user: null,
    moderation: 'auto',
    stream: false,
    partialImages: 0,
    images: [],
    mask: null,
    strength: null,
    ...overrides,
  };
}

/** A gpt-image-1 edit of `image` (RGBA at the output size), optionally masked. */
export function editRequest(
  image: RawImage,
  mask: RawImage | null,
  overrides: Partial<ImageRequest> = {},
): ImageRequest {
  return generationRequest({
    operation: 'edit',
    deployment: 'gpt-image-1',
    family: 'gpt-image-1',
    quality: 'high',
    style: null,
    width: image.width,
    height: image.height,
    images: [image],
    mask,
    ...overrides,
  });
}

/** An RGBA image whose every pixel is computed by `pixel(x, y)`. */
export function rgbaImage(
  width: number,
  height: number,
  pixel: (x: number, y: number) => readonly [number, number, number, number],
): RawImage {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  }
  return { width, height, channels: 4, data };
}
