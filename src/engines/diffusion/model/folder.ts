// Inspects a diffusers/optimum ONNX model folder (docs/diffusion.md, "Model folder layout") before any session is
// created: which family it is, which parts it has, and every problem at once, so that someone
// fixing a half-downloaded folder sees the whole list rather than one file per attempt.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { parseSchedulerConfig, type SchedulerConfig } from '../schedulers/index.ts';

/** sd2 covers SD 2.x and SD-Turbo; sdxl covers SDXL and SDXL-Turbo. Inpainting is a separate flag. */
export type ModelFamily = 'sd1' | 'sd2' | 'sdxl' | 'lcm';

/** A folder or part that cannot be used; each problem names the file, relative to the folder. */
export class ModelFolderError extends Error {
  constructor(
    readonly folder: string,
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`model folder ${folder}: ${problems.join('; ')}`, options);
    this.name = 'ModelFolderError';
  }
}

type Json = Record<string, unknown>;

export interface ModelParts {
  /** Absolute paths. */
  tokenizer: string;
  textEncoder: string;
  unet: string;
  vaeDecoder: string;
  schedulerConfig: string;
  /** Absent when the folder has none: then no img2img (and no inpainting). */
  vaeEncoder?: string;
  /** SDXL only. */
  tokenizer2?: string;
  textEncoder2?: string;
  /** The tiny autoencoder (TAESD/TAESDXL): vae_tiny_decoder/ and vae_tiny_encoder/, each optional. */
  tinyDecoder?: string;
  tinyEncoder?: string;
}

export interface ModelFolder {
  path: string;
  /** model_index.json `_class_name`. */
  pipelineClass: string;
  family: ModelFamily;
  /** Which evidence decided the family, for the load log. */
  familyReason: string;
  /** From the folder alone (class name or unet config); loadModel settles it from the UNet's inputs. */
  inpainting: boolean;
  parts: ModelParts;
  schedulerConfig: SchedulerConfig;
  /**
   * Per-part config.json that optimum writes (docs/diffusion.md, "Model folder layout"); absent with the legacy
   * diffusers script.
   */
  configs: { unet?: Json; vae?: Json; textEncoder?: Json; tokenizer?: Json };
  /** 2^(len(block_out_channels)-1) from the VAE config, else 8 (docs/diffusion.md, "Family constants"). */
  vaeScaleFactor: number;
  /**
   * Latents = scaling_factor × VAE latents: the VAE config's value, else 0.13025 for SDXL and 0.18215 otherwise
   * (docs/diffusion.md, "Family constants").
   */
  vaeScalingFactor: number;
  /** unet sample_size × vaeScaleFactor when known, else 1024 for SDXL and 512 otherwise. */
  nativeResolution: number;
  /**
   * Latents = this × tiny-encoder latents: AutoencoderTiny's config scaling_factor, 1.0 when absent
   * (TAESD works on the UNet's latents as they are).
   */
  tinyScalingFactor: number;
}

/** Where a model folder keeps its tiny autoencoder, relative to the folder. */
export const TINY_DECODER_FILE = 'vae_tiny_decoder/model.onnx';
export const TINY_ENCODER_FILE = 'vae_tiny_encoder/model.onnx';

const exists = (path: string) =>
  stat(path).then(
    (s) => s.isFile() || s.isDirectory(),
    () => false,
  );

export async function inspectModelFolder(path: string): Promise<ModelFolder> {
  if (!(await exists(path))) throw new ModelFolderError(path, ['the folder does not exist']);
  const index = await readJson(path, 'model_index.json');
  if (index.kind === 'missing')
    throw new ModelFolderError(path, ['model_index.json is missing (not a diffusers model folder?)']);
  if (index.kind === 'invalid') throw new ModelFolderError(path, [`model_index.json ${index.problem}`]);
  const pipelineClass = typeof index.value._class_name === 'string' ? index.value._class_name : '';

  const problems: string[] = [];
  const hasDir = (dir: string) => exists(join(path, dir));
  const isXl = /XL/.test(pipelineClass) || (await hasDir('text_encoder_2')) || (await hasDir('tokenizer_2'));
  const configs = {
    unet: await optionalJson(path, 'unet/config.json', problems),
    vae:
      (await optionalJson(path, 'vae_decoder/config.json', problems)) ??
      (await optionalJson(path, 'vae_encoder/config.json', problems)),
    textEncoder: await optionalJson(path, 'text_encoder/config.json', problems),
    tokenizer: await optionalJson(path, 'tokenizer/special_tokens_map.json', problems),
  };
  const inpainting = /Inpaint/i.test(pipelineClass) || configs.unet?.in_channels === 9;

  // Required files, checked all together.
  const required: Array<[keyof ModelParts, string]> = [
    ['tokenizer', 'tokenizer'],
    ['textEncoder', 'text_encoder/model.onnx'],
    ['unet', 'unet/model.onnx'],
    ['vaeDecoder', 'vae_decoder/model.onnx'],
    ['schedulerConfig', 'scheduler/scheduler_config.json'],
  ];
  if (isXl) required.push(['tokenizer2', 'tokenizer_2'], ['textEncoder2', 'text_encoder_2/model.onnx']);
  // A 9-channel UNet cannot run without masked-image latents, so the encoder stops being optional.
  if (inpainting) required.push(['vaeEncoder', 'vae_encoder/model.onnx']);
  const parts: Partial<ModelParts> = {};
  for (const [key, rel] of required) {
    const isTokenizer = key === 'tokenizer' || key === 'tokenizer2';
    // A tokenizer folder is checked by its two essential files; loadClipTokenizer reports the rest.
    const files = isTokenizer ? [`${rel}/vocab.json`, `${rel}/merges.txt`] : [rel];
    const missing = [];
    for (const file of files) if (!(await exists(join(path, file)))) missing.push(file);
    for (const file of missing)
      problems.push(`${file} is missing${key === 'vaeEncoder' ? ' (an inpainting model needs it)' : ''}`);
    if (missing.length === 0) parts[key] = join(path, rel);
  }
  if (!parts.vaeEncoder && (await exists(join(path, 'vae_encoder/model.onnx'))))
    parts.vaeEncoder = join(path, 'vae_encoder/model.onnx');
  if (await exists(join(path, TINY_DECODER_FILE))) parts.tinyDecoder = join(path, TINY_DECODER_FILE);
  if (await exists(join(path, TINY_ENCODER_FILE))) parts.tinyEncoder = join(path, TINY_ENCODER_FILE);
  const tinyConfig =
    (await optionalJson(path, 'vae_tiny_decoder/config.json', problems)) ??
    (await optionalJson(path, 'vae_tiny_encoder/config.json', problems));
  const tinyScaling = tinyConfig?.scaling_factor;

  let schedulerConfig: SchedulerConfig | undefined;
  if (parts.schedulerConfig) {
    const raw = await readJson(path, 'scheduler/scheduler_config.json');
    if (raw.kind === 'invalid') problems.push(`scheduler/scheduler_config.json ${raw.problem}`);
    else if (raw.kind === 'ok') {
      try {
        schedulerConfig = parseSchedulerConfig(raw.value);
      } catch (error) {
        problems.push(`scheduler/scheduler_config.json: ${(error as Error).message}`);
      }
    }
  }
  if (problems.length > 0 || !schedulerConfig) throw new ModelFolderError(path, problems);

  const { family, reason } = decideFamily({ pipelineClass, isXl, configs, schedulerConfig });
  const vaeScaleFactor = scaleFactor(configs.vae);
  const configured = configs.vae?.scaling_factor;
  const vaeScalingFactor =
    typeof configured === 'number' && configured > 0 ? configured : family === 'sdxl' ? 0.13025 : 0.18215;
  const sampleSize = configs.unet?.sample_size;
  const nativeResolution =
    typeof sampleSize === 'number' && sampleSize > 0 ? sampleSize * vaeScaleFactor : family === 'sdxl' ? 1024 : 512;
  return {
    path,
    pipelineClass,
    family,
    familyReason: reason,
    inpainting,
    parts: parts as ModelParts,
    schedulerConfig,
    configs,
    vaeScaleFactor,
    vaeScalingFactor,
    nativeResolution,
    tinyScalingFactor: typeof tinyScaling === 'number' && tinyScaling > 0 ? tinyScaling : 1,
  };
}

/**
 * The family, strongest evidence first: SDXL by its second encoder or class name; LCM by pipeline,
 * scheduler class or the UNet's guidance embedding (time_cond_proj_dim); SD 1 vs 2 by the text
 * width (768 vs 1024), else by the pad token (SD 2.x and SD-Turbo's OpenCLIP tokenizer pads with '!').
 */
function decideFamily(input: {
  pipelineClass: string;
  isXl: boolean;
  configs: ModelFolder['configs'];
  schedulerConfig: SchedulerConfig;
}): {
  family: ModelFamily;
  reason: string;
} {
  const { pipelineClass, configs } = input;
  if (input.isXl)
    return {
      family: 'sdxl',
      reason: /XL/.test(pipelineClass) ? `pipeline ${pipelineClass}` : 'text_encoder_2/tokenizer_2 present',
    };
  if (/LatentConsistency/.test(pipelineClass)) return { family: 'lcm', reason: `pipeline ${pipelineClass}` };
  if (input.schedulerConfig._class_name === 'LCMScheduler') return { family: 'lcm', reason: 'scheduler LCMScheduler' };
  if (typeof configs.unet?.time_cond_proj_dim === 'number') return { family: 'lcm', reason: 'unet time_cond_proj_dim' };
  const width = configs.unet?.cross_attention_dim ?? configs.textEncoder?.hidden_size;
  if (width === 768) return { family: 'sd1', reason: 'text width 768' };
  if (width === 1024) return { family: 'sd2', reason: 'text width 1024' };
  const pad = configs.tokenizer?.pad_token;
  const padText =
    typeof pad === 'string' ? pad : typeof pad === 'object' && pad !== null ? (pad as Json).content : undefined;
  if (padText === '!') return { family: 'sd2', reason: "pad token '!'" };
  return { family: 'sd1', reason: 'default' };
}

function scaleFactor(vae: Json | undefined): number {
  const blocks = vae?.block_out_channels;
  return Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : 8;
}

type JsonResult = { kind: 'ok'; value: Json } | { kind: 'missing' } | { kind: 'invalid'; problem: string };

async function readJson(folder: string, rel: string): Promise<JsonResult> {
  let text: string;
  try {
    text = await readFile(join(folder, rel), 'utf8');
  } catch {
    return { kind: 'missing' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { kind: 'invalid', problem: `is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { kind: 'invalid', problem: 'must hold a JSON object' };
  return { kind: 'ok', value: value as Json };
}

/** A config that is absent is fine; one that is present but broken is a problem worth reporting. */
async function optionalJson(folder: string, rel: string, problems: string[]): Promise<Json | undefined> {
  const result = await readJson(folder, rel);
  if (result.kind === 'invalid') problems.push(`${rel} ${result.problem}`);
  return result.kind === 'ok' ? result.value : undefined;
}
