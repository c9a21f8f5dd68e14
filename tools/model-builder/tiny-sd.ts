// Writes a complete, tiny, random Stable Diffusion ONNX folder in the diffusers/optimum layout
// (docs/diffusion.md, "Model folder layout"), so the engine can be tested end to end without downloading a model.
// The options reproduce the exporter differences an engine must cope with (docs/diffusion.md, "Exporter generations"):
// int32 or int64
// ids, three timestep forms, 9-channel inpainting UNets, fp16 I/O, external weights, and both
// VAE encoder outputs; and the three families' I/O: SD 1.x/2.x, SDXL (two encoders with
// hidden_states.*, text_embeds and time_ids; "SDXL conditioning") and LCM (timestep_cond).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { normalSource } from '../../src/engines/diffusion/random.ts';
import { buildClipVocab } from '../../src/engines/diffusion/tokenizer/index.ts';
import {
  type IdsType,
  type PartContext,
  textEncoderGraph,
  textEncoderWithHiddenStatesGraph,
  type TimestepKind,
  unetGraph,
  vaeDecoderGraph,
  vaeEncoderGraph,
} from './graphs.ts';
import type { GraphBuilder } from './onnx.ts';
import { TAESD, TAESD_NARROW, writeTinyAutoencoder } from './taesd.ts';

export type { IdsType, TimestepKind } from './graphs.ts';

export const SCHEDULER_PRESETS = {
  // stabilityai/sd-turbo scheduler/scheduler_config.json
  'euler-trailing': {
    _class_name: 'EulerDiscreteScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    clip_sample: false,
    interpolation_type: 'linear',
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: 'trailing',
    trained_betas: null,
    use_karras_sigmas: false,
  },
  // stabilityai/sdxl-turbo
  'euler-ancestral-trailing': {
    _class_name: 'EulerAncestralDiscreteScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    steps_offset: 1,
    timestep_spacing: 'trailing',
    trained_betas: null,
  },
  // runwayml/stable-diffusion-v1-5
  pndm: {
    _class_name: 'PNDMScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    clip_sample: false,
    num_train_timesteps: 1000,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    trained_betas: null,
  },
  ddim: {
    _class_name: 'DDIMScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    clip_sample: false,
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    set_alpha_to_one: false,
    steps_offset: 1,
    timestep_spacing: 'leading',
  },
  // SimianLuo/LCM_Dreamshaper_v7
  lcm: {
    _class_name: 'LCMScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    clip_sample: false,
    num_train_timesteps: 1000,
    original_inference_steps: 50,
    prediction_type: 'epsilon',
    set_alpha_to_one: true,
    steps_offset: 1,
    timestep_scaling: 10,
    timestep_spacing: 'leading',
    trained_betas: null,
  },
} as const;
export type SchedulerPreset = keyof typeof SCHEDULER_PRESETS;

/** sd: SD 1.x/2.x (and SD-Turbo); sdxl: SDXL/SDXL-Turbo; lcm: a latent consistency model (SD 1.5-based). */
export type TinyFamily = 'sd' | 'sdxl' | 'lcm';
const FAMILIES: readonly TinyFamily[] = ['sd', 'sdxl', 'lcm'];
const DEFAULT_SCHEDULER: Record<TinyFamily, SchedulerPreset> = {
  sd: 'euler-trailing',
  sdxl: 'euler-ancestral-trailing',
  lcm: 'lcm',
};

export interface TinyModelOptions {
  /**
   * Default sd. sdxl adds text_encoder_2/tokenizer_2 and the UNet's text_embeds/time_ids; lcm the UNet's timestep_cond.
   */
  family?: TinyFamily;
  /** dtype of text_encoder `input_ids`; default int32 (diffusers' script, optimum ≤ 1.23). */
  idsType?: IdsType;
  /** default float-vector (diffusers' script). */
  timestep?: TimestepKind;
  /**
   * A 9-channel UNet (latents ‖ mask ‖ masked-image latents; docs/diffusion.md, "Inpainting and image-to-image"). Not
   * for lcm (diffusers has no LCM inpainting pipeline).
   */
  inpainting?: boolean;
  /** float16 for every float input, output and weight (as an fp16 export); the timestep too unless int64. */
  fp16?: boolean;
  /** UNet weights in `unet/model.onnx_data`, as optimum writes big UNets. */
  externalData?: boolean;
  /** VAE encoder outputs `latent_parameters` [B,8,h,w] (optimum ≥ 1.23) instead of `latent_sample`. */
  latentParameters?: boolean;
  /** Channel dims as names (`num_channels`), as the real exporters declare them, instead of 4/9. */
  symbolicChannels?: boolean;
  /**
   * A preset name or a whole scheduler_config.json object; default euler-trailing (SD-Turbo), euler-ancestral-trailing
   * for sdxl (SDXL-Turbo), lcm for lcm.
   */
  scheduler?: SchedulerPreset | Record<string, unknown>;
  /**
   * SD 1.x pads with `<|endoftext|>`, SD 2.x/SD-Turbo with `!`. For sdxl this is `tokenizer/`; `tokenizer_2/` always
   * pads with `!`.
   */
  padToken?: '<|endoftext|>' | '!';
  /** Width of the (first) text encoder output; the UNet's cross-attention size except for sdxl. Default 32. */
  hiddenSize?: number;
  /**
   * sdxl: width of text_encoder_2 (real 1280); the UNet's cross-attention size is hiddenSize + hiddenSize2. Default 48.
   */
  hiddenSize2?: number;
  /** sdxl: size of text_encoder_2's `text_embeds` (projection_dim; real 1280). Default hiddenSize2. */
  projectionDim?: number;
  /**
   * lcm: size of the UNet's `timestep_cond` (time_cond_proj_dim; real 256). Default 8. With sdxl: an LCM-SDXL UNet
   * (latent-consistency/lcm-sdxl); default none.
   */
  timeCondProjDim?: number;
  /**
   * The VAE config's `scaling_factor`. Default 0.13025 for sdxl, else 0.18215 (docs/diffusion.md, "Family constants").
   */
  vaeScalingFactor?: number;
  /** Seed of the random weights; the same seed writes byte-identical files. Default 0. */
  seed?: number;
  /**
   * Also write the tiny autoencoder (vae_tiny_decoder/, vae_tiny_encoder/) with TAESD's exact op
   * sequence: `narrow` at width 8 (cheap), `real` at TAESD's width 64 (1,222,531 decoder parameters).
   */
  tinyAutoencoder?: 'narrow' | 'real';
}

export interface TinyModelInfo {
  folder: string;
  /** Paths relative to `folder`, in the order written. */
  files: string[];
  family: TinyFamily;
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  hiddenSize: number;
  /** Width of the UNet's encoder_hidden_states: hiddenSize, or hiddenSize + hiddenSize2 for sdxl. */
  crossAttentionDim: number;
  unetInChannels: 4 | 9;
  /** sdxl only. */
  hiddenSize2?: number;
  projectionDim?: number;
  /** lcm (and an LCM-SDXL UNet) only. */
  timeCondProjDim?: number;
}

/** A few merges so that common prompt words become single tokens, as with the real 48,894. */
export const TINY_MERGES = [
  'a n',
  'an d</w>',
  'c a',
  'ca t</w>',
  'd o',
  'do g</w>',
  'i n',
  'in g</w>',
  'o f</w>',
  'p h',
  'o t',
  'ph ot',
  'phot o</w>',
  'r e',
  't h',
  'th e</w>',
  'e d</w>',
  'o n</w>',
];

const MAX_LENGTH = 77;
/**
 * Layers of the sdxl encoders, so hidden_states.0 … .2 and .0 … .3 (real: 12 and 32); the penultimates differ in index,
 * as for real.
 */
const SDXL_LAYERS = { textEncoder: 2, textEncoder2: 3 };
/** SDXL's addition_time_embed_dim (real 256): projection_class_embeddings_input_dim = P + 6 × this. */
const ADDITION_TIME_EMBED_DIM = 8;

/** The family's sizes after defaults, with options that make no sense for it refused. */
function familySizes(options: TinyModelOptions) {
  const family = options.family ?? 'sd';
  if (!FAMILIES.includes(family))
    throw new Error(`family must be one of ${FAMILIES.join(', ')}, got "${String(family)}"`);
  const only = (name: keyof TinyModelOptions, ...allowed: TinyFamily[]) => {
    if (options[name] !== undefined && !allowed.includes(family))
      throw new Error(`${name} is for family ${allowed.join(' or ')} only (family is ${family})`);
  };
  only('hiddenSize2', 'sdxl');
  only('projectionDim', 'sdxl');
  only('timeCondProjDim', 'lcm', 'sdxl');
  if (family === 'lcm' && options.inpainting)
    throw new Error('inpainting is not available for family lcm (diffusers has no LCM inpainting pipeline)');
  const size = (name: string, value: number | undefined, fallback: number) => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
    return v;
  };
  const hiddenSize = size('hiddenSize', options.hiddenSize, 32);
  const hiddenSize2 = family === 'sdxl' ? size('hiddenSize2', options.hiddenSize2, 48) : undefined;
  const projectionDim =
    hiddenSize2 !== undefined ? size('projectionDim', options.projectionDim, hiddenSize2) : undefined;
  const timeCondProjDim =
    family === 'lcm' || options.timeCondProjDim !== undefined
      ? size('timeCondProjDim', options.timeCondProjDim, 8)
      : undefined;
  const vaeScalingFactor = options.vaeScalingFactor ?? (family === 'sdxl' ? 0.13025 : 0.18215);
  if (!(vaeScalingFactor > 0)) throw new Error(`vaeScalingFactor must be positive, got ${vaeScalingFactor}`);
  const crossAttentionDim = hiddenSize + (hiddenSize2 ?? 0);
  return { family, hiddenSize, hiddenSize2, projectionDim, timeCondProjDim, vaeScalingFactor, crossAttentionDim };
}
type FamilySizes = ReturnType<typeof familySizes>;

export async function writeTinyModel(folder: string, options: TinyModelOptions = {}): Promise<TinyModelInfo> {
  const sizes = familySizes(options);
  const { family, hiddenSize } = sizes;
  const inChannels = options.inpainting ? 9 : 4;
  const vocab = buildClipVocab(TINY_MERGES);
  const vocabSize = Object.keys(vocab).length;
  const { files, write, json } = folderWriter(folder);
  const onnx = async (part: string, graph: GraphBuilder, externalData = false) => {
    const { model, data } = graph.encode({ externalData: externalData ? 'model.onnx_data' : undefined });
    await write(`${part}/model.onnx`, model);
    if (data) await write(`${part}/model.onnx_data`, data);
  };

  const scheduler = options.scheduler ?? DEFAULT_SCHEDULER[family];
  const schedulerConfig = typeof scheduler === 'string' ? SCHEDULER_PRESETS[scheduler] : scheduler;
  await json('model_index.json', modelIndex(family, String(schedulerConfig._class_name), options.inpainting ?? false));
  await json('scheduler/scheduler_config.json', schedulerConfig);
  await writeTokenizer(json, write, vocab, options.padToken ?? '<|endoftext|>');
  if (family === 'sdxl') await writeTokenizer(json, write, vocab, '!', 'tokenizer_2');

  // One weight stream, consumed in a fixed order, makes the files a function of the seed alone.
  const ctx: PartContext = {
    normal: normalSource(options.seed ?? 0),
    float: options.fp16 ? 'float16' : 'float32',
    hiddenSize,
  };
  const symbolicChannels = options.symbolicChannels ?? false;
  const text = { ids: options.idsType ?? 'int32', vocabSize, maxLength: MAX_LENGTH } as const;
  if (sizes.hiddenSize2 === undefined) await onnx('text_encoder', textEncoderGraph(ctx, text));
  else {
    await onnx('text_encoder', textEncoderWithHiddenStatesGraph(ctx, { ...text, layers: SDXL_LAYERS.textEncoder }));
    const ctx2 = { ...ctx, hiddenSize: sizes.hiddenSize2 };
    await onnx(
      'text_encoder_2',
      textEncoderWithHiddenStatesGraph(ctx2, {
        ...text,
        layers: SDXL_LAYERS.textEncoder2,
        projectionDim: sizes.projectionDim,
      }),
    );
  }
  const unetCtx = { ...ctx, hiddenSize: sizes.crossAttentionDim, external: options.externalData ?? false };
  const unet = unetGraph(unetCtx, {
    inChannels,
    timestep: options.timestep ?? 'float-vector',
    symbolicChannels,
    textEmbedsDim: sizes.projectionDim,
    timestepCondDim: sizes.timeCondProjDim,
  });
  await onnx('unet', unet, unetCtx.external);
  await onnx('vae_decoder', vaeDecoderGraph(ctx, { symbolicChannels }));
  await onnx('vae_encoder', vaeEncoderGraph(ctx, { latentParameters: options.latentParameters ?? false }));
  await writeComponentConfigs(json, { ...sizes, vocabSize, inChannels });
  if (options.tinyAutoencoder) {
    const config = options.tinyAutoencoder === 'real' ? TAESD : TAESD_NARROW;
    const written = await writeTinyAutoencoder(folder, { config, seed: options.seed ?? 0, fp16: options.fp16 });
    files.push(...written.files);
  }

  return {
    folder,
    files,
    family,
    vocabSize,
    bosTokenId: vocab['<|startoftext|>']!,
    eosTokenId: vocab['<|endoftext|>']!,
    hiddenSize,
    crossAttentionDim: sizes.crossAttentionDim,
    unetInChannels: inChannels,
    ...(sizes.hiddenSize2 !== undefined ? { hiddenSize2: sizes.hiddenSize2, projectionDim: sizes.projectionDim } : {}),
    ...(sizes.timeCondProjDim !== undefined ? { timeCondProjDim: sizes.timeCondProjDim } : {}),
  };
}

export function modelIndex(family: TinyFamily, schedulerClass: string, inpainting: boolean) {
  if (family !== 'sd') return torchModelIndex(family, schedulerClass, inpainting);
  const onnxModel = ['diffusers', 'OnnxRuntimeModel'];
  return {
    _class_name: inpainting ? 'OnnxStableDiffusionInpaintPipeline' : 'OnnxStableDiffusionPipeline',
    _diffusers_version: '0.30.0',
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', schedulerClass],
    text_encoder: onnxModel,
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: onnxModel,
    vae_decoder: onnxModel,
    vae_encoder: onnxModel,
  };
}

/**
 * The SDXL and LCM ONNX folders on the Hub keep the torch pipeline's model_index.json (optimum
 * saves the original config: stabilityai/sdxl-turbo, SimianLuo/LCM_Dreamshaper_v7; docs/diffusion.md, "Known ONNX
 * repositories").
 */
function torchModelIndex(family: 'sdxl' | 'lcm', schedulerClass: string, inpainting: boolean) {
  const tokenizer = ['transformers', 'CLIPTokenizer'];
  const common = {
    _diffusers_version: '0.30.0',
    feature_extractor: [null, null],
    image_encoder: [null, null],
    scheduler: ['diffusers', schedulerClass],
    text_encoder: ['transformers', 'CLIPTextModel'],
  };
  const models = { unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'] };
  if (family === 'lcm') {
    return {
      _class_name: 'LatentConsistencyModelPipeline',
      ...common,
      requires_safety_checker: false,
      safety_checker: [null, null],
      tokenizer,
      ...models,
    };
  }
  return {
    _class_name: inpainting ? 'StableDiffusionXLInpaintPipeline' : 'StableDiffusionXLPipeline',
    ...common,
    // With CFG and no negative prompt, the negative embeddings are zeros (docs/diffusion.md, "SDXL conditioning").
    force_zeros_for_empty_prompt: true,
    ...(inpainting ? { requires_aesthetics_score: false } : {}),
    text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'],
    tokenizer,
    tokenizer_2: tokenizer,
    ...models,
  };
}

/** Writes files under `folder`, creating directories, and lists them (relative) in write order. */
export function folderWriter(folder: string) {
  const files: string[] = [];
  const write = async (path: string, content: string | Uint8Array) => {
    await mkdir(join(folder, path, '..'), { recursive: true });
    await writeFile(join(folder, path), content);
    files.push(path);
  };
  const json = (path: string, value: unknown) => write(path, `${JSON.stringify(value, null, 2)}\n`);
  return { files, write, json };
}

type WriteJson = (path: string, value: unknown) => Promise<void>;

/** The slow CLIPTokenizer files, with ids in the real CLIP layout (bytes, merges, BOS, EOS). */
export async function writeTokenizer(
  json: WriteJson,
  write: (path: string, text: string) => Promise<void>,
  vocab: Record<string, number>,
  pad: string,
  dir = 'tokenizer',
) {
  const special = {
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: pad,
    unk_token: '<|endoftext|>',
  };
  await json(`${dir}/vocab.json`, vocab);
  await write(`${dir}/merges.txt`, ['#version: 0.2', ...TINY_MERGES, ''].join('\n'));
  await json(`${dir}/special_tokens_map.json`, special);
  await json(`${dir}/tokenizer_config.json`, {
    ...special,
    add_prefix_space: false,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    errors: 'replace',
    model_max_length: MAX_LENGTH,
    tokenizer_class: 'CLIPTokenizer',
  });
}

/**
 * optimum writes each part's config.json (docs/diffusion.md, "Model folder layout"). Four VAE blocks make the scale
 * factor 8, matching
 * the graphs (the diffusers test VAEs have 2 blocks and factor 2: docs/diffusion.md, "Family constants"); an SDXL
 * UNet's
 * sample_size 128 makes its native resolution 1024.
 */
async function writeComponentConfigs(json: WriteJson, sizes: FamilySizes & { vocabSize: number; inChannels: number }) {
  const blocks = [32, 32, 32, 32];
  const xl = sizes.family === 'sdxl';
  const clip = { max_position_embeddings: MAX_LENGTH, vocab_size: sizes.vocabSize };
  await json('text_encoder/config.json', {
    _class_name: 'CLIPTextModel',
    architectures: ['CLIPTextModel'],
    hidden_size: sizes.hiddenSize,
    ...clip,
    num_hidden_layers: xl ? SDXL_LAYERS.textEncoder : 1,
    model_type: 'clip_text_model',
  });
  if (xl) {
    await json('text_encoder_2/config.json', {
      _class_name: 'CLIPTextModelWithProjection',
      architectures: ['CLIPTextModelWithProjection'],
      hidden_size: sizes.hiddenSize2,
      projection_dim: sizes.projectionDim,
      ...clip,
      num_hidden_layers: SDXL_LAYERS.textEncoder2,
      model_type: 'clip_text_model',
    });
  }
  await json('unet/config.json', {
    _class_name: 'UNet2DConditionModel',
    in_channels: sizes.inChannels,
    out_channels: 4,
    sample_size: xl ? 128 : 64,
    cross_attention_dim: sizes.crossAttentionDim,
    block_out_channels: blocks,
    time_cond_proj_dim: sizes.timeCondProjDim ?? null,
    addition_embed_type: xl ? 'text_time' : null,
    ...(xl
      ? {
          addition_time_embed_dim: ADDITION_TIME_EMBED_DIM,
          projection_class_embeddings_input_dim: sizes.projectionDim! + 6 * ADDITION_TIME_EMBED_DIM,
        }
      : {}),
  });
  const vae = {
    _class_name: 'AutoencoderKL',
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    block_out_channels: blocks,
    sample_size: xl ? 1024 : 512,
    scaling_factor: sizes.vaeScalingFactor,
    ...(xl ? { force_upcast: true } : {}),
  };
  await json('vae_decoder/config.json', vae);
  await json('vae_encoder/config.json', vae);
}
