// What the diffusion bench's sections share: the preset, the cached model folder, JSON output and
// one timed generation.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { encodeImage } from '../../src/codec/index.ts';
import type { LoadedModel } from '../../src/engines/diffusion/model/index.ts';
import { runPipeline } from '../../src/engines/diffusion/pipeline/index.ts';
import { type ArchitecturePreset, writeArchitectureModel } from '../../tools/model-builder/architectures.ts';
import { TAESD, TAESD_NARROW, TINY_DECODER_DIR, writeTinyAutoencoder } from '../../tools/model-builder/taesd.ts';

export type Preset = Extract<ArchitecturePreset, 'small' | 'sd-turbo' | 'sd15'>;
export const PRESETS: readonly Preset[] = ['small', 'sd-turbo', 'sd15'];
/** A bench preset, or the SDXL architecture its sdxl section measures (bench/diffusion/sdxl.ts). */
export type ModelPreset = Preset | Extract<ArchitecturePreset, 'sdxl-turbo' | 'sdxl-small'>;

export const SEED = 0;
export const SIZE = 512;
export const PROMPT = 'a lighthouse on a cliff at dawn, gulls circling, waves breaking on the rocks below';

export const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
export const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
export const load1m = () => round(loadavg()[0]!, 2);
export const sum = (list: readonly number[] = []) => list.reduce((a, b) => a + b, 0);
export function median(list: readonly number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function printer(preset: ModelPreset) {
  return (figures: object) => console.log(JSON.stringify({ bench: 'diffusion', preset, ...figures }));
}

export const BENCH_MODELS_DIR = fileURLToPath(new URL('../../.cache/bench-models/', import.meta.url));
const ROOT = BENCH_MODELS_DIR;

const folderName = (preset: ModelPreset, fp16?: boolean) => `${preset}${fp16 ? '-fp16' : ''}-${SEED}`;

/** Whether the preset's folder has been written completely already. */
export function isCached(preset: ModelPreset, options: { fp16?: boolean } = {}): boolean {
  return existsSync(join(ROOT, folderName(preset, options.fp16), '.complete.json'));
}

/**
 * The preset's folder under .cache/bench-models, written once (atomically: a marker, then a rename),
 * with the tiny autoencoder beside the full VAE (added to a folder written before it existed).
 */
export async function cachedModel(
  preset: ModelPreset,
  print: (figures: object) => void,
  options: { fp16?: boolean } = {},
): Promise<string> {
  const name = folderName(preset, options.fp16);
  const folder = join(ROOT, name);
  const marker = join(folder, '.complete.json');
  if (!existsSync(marker)) {
    await mkdir(ROOT, { recursive: true });
    // A run cut short leaves a partial folder.
    for (const entry of await readdir(ROOT)) {
      if (entry.startsWith(`${name}.partial-`)) await rm(join(ROOT, entry), { recursive: true, force: true });
    }
    await rm(folder, { recursive: true, force: true });
    const partial = `${folder}.partial-${process.pid}`;
    const started = performance.now();
    const info = await writeArchitectureModel(partial, preset, { seed: SEED, fp16: options.fp16 });
    const bytes = sum(Object.values(info.bytes));
    await writeFile(
      join(partial, '.complete.json'),
      `${JSON.stringify({ preset, seed: SEED, fp16: options.fp16 ?? false, parameters: info.parameters, bytes: info.bytes })}\n`,
    );
    await rename(partial, folder);
    print({
      case: 'model written',
      fp16: options.fp16 ?? false,
      parameters: info.parameters.total,
      gb: round(bytes / 1e9, 2),
      seconds: round((performance.now() - started) / 1000),
    });
  }
  if (!existsSync(join(folder, TINY_DECODER_DIR, 'model.onnx'))) {
    await writeTinyAutoencoder(folder, {
      config: preset === 'small' || preset === 'sdxl-small' ? TAESD_NARROW : TAESD,
      seed: SEED,
      fp16: options.fp16,
    });
  }
  return folder;
}

/** One generation and the PNG encode of its images, in this thread, timed per stage. */
export interface Run {
  /** runPipeline's wall time plus the PNG encodes, milliseconds. */
  wallMs: number;
  modelMs: number;
  textEncoderMs: number;
  unetMs: number[];
  vaeDecodeMs: number[];
  pngMs: number[];
}

/**
 * `autoencoder: 'tiny'` decodes with the folder's tiny decoder, as a deployment with `diffusion.autoencoder: "tiny"`
 * does.
 */
export async function generate(
  model: LoadedModel,
  steps: number,
  batch: number,
  seed: number,
  autoencoder: 'full' | 'tiny' = 'full',
): Promise<Run> {
  const result = await runPipeline(model, {
    prompt: PROMPT,
    n: batch,
    width: SIZE,
    height: SIZE,
    steps,
    guidanceScale: 0,
    seed,
    autoencoder,
  });
  const pngMs: number[] = [];
  for (const image of result.images) {
    const started = performance.now();
    await encodeImage(image, 'png', 100);
    pngMs.push(performance.now() - started);
  }
  const { runs, totalMs } = result.timings;
  return {
    wallMs: totalMs + sum(pngMs),
    modelMs: sum(Object.values(runs).flat()),
    // Both encoders for SDXL.
    textEncoderMs: sum(runs.text_encoder) + sum(runs.text_encoder_2),
    unetMs: runs.unet ?? [],
    vaeDecodeMs: [...(runs.vae_decoder ?? []), ...(runs.vae_tiny_decoder ?? [])],
    pngMs,
  };
}
