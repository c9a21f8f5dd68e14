import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';
import sharp from 'sharp';

import { type App, type AppOptions, createApp } from '../../src/app.ts';
import { type ConfigOverrides, loadConfig } from '../../src/config/index.ts';

export const TEST_KEY = 'test-key-0123456789abcdef';
export const SECOND_KEY = 'test-key-second-rotation';

export interface TestApp extends App {
  dataDir: string;
  /** Close the app and remove its data directory. */
  dispose(): Promise<void>;
}

/**
 * A real app on a fresh data directory, for `inject()` route tests and (after `listen`) for
 * end-to-end tests. Pass `dataDir` to reopen an existing one (restart tests).
 */
export async function startTestApp(
  options: { config?: ConfigOverrides; env?: Record<string, string>; dataDir?: string } & Partial<
    Omit<AppOptions, 'logger'>
  > = {},
): Promise<TestApp> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'easel-test-'));
  const config = loadConfig(
    { EASEL_DATA_DIR: dataDir, EASEL_API_KEYS: `${TEST_KEY},${SECOND_KEY}`, ...options.env },
    options.config,
  );
  const app = await createApp(config, {
    logger: pino({ level: process.env.EASEL_TEST_LOG ?? 'silent' }),
    imageFilter: options.imageFilter,
    engine: options.engine,
    blobs: options.blobs,
    imageLinks: options.imageLinks,
  });
  return {
    ...app,
    dataDir,
    async dispose() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Solid-colour test images built at test time (no fixtures in the repo). */
export async function solidPng(
  width: number,
  height: number,
  rgba: [number, number, number, number] = [40, 120, 200, 255],
) {
  return sharp({
    create: { width, height, channels: 4, background: { r: rgba[0], g: rgba[1], b: rgba[2], alpha: rgba[3] / 255 } },
  })
    .png()
    .toBuffer();
}

/** A mask whose left half is transparent (edit here) and right half opaque (keep). */
export async function halfMask(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 4, 255);
  for (let y = 0; y < height; y++) for (let x = 0; x < width / 2; x++) data[(y * width + x) * 4 + 3] = 0;
  return sharp(data, { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer();
}

/** Decode a PNG/JPEG/WebP answer to raw RGBA for pixel assertions. */
export async function decode(bytes: Buffer) {
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, format: (await sharp(bytes).metadata()).format };
}

/** A multipart body, as the SDKs and curl send it. */
export function multipartBody(
  parts: Array<
    { name: string; value: string } | { name: string; filename: string; contentType?: string; data: Buffer }
  >,
) {
  const boundary = `----easel-test-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if ('data' in part) {
      chunks.push(
        Buffer.from(
          `Content-Disposition: form-data; name="${part.name}"; filename="${part.filename}"\r\n` +
            `Content-Type: ${part.contentType ?? 'application/octet-stream'}\r\n\r\n`,
        ),
        part.data,
        Buffer.from('\r\n'),
      );
    } else {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${part.name}"\r\n\r\n${part.value}\r\n`));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
