// Writes a complete, tiny, random Stable Diffusion ONNX folder in the diffusers/optimum layout
// (onnx-diffusion.md §1.1), so the engine can be tested end to end without downloading a model.
// The options reproduce the exporter differences an engine must cope with (§1.2): int32 or int64
// ids, three timestep forms, 9-channel inpainting UNets, fp16 I/O, external weights, and both
// VAE encoder outputs.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { normalSource } from '../../src/engines/diffusion/random.ts';
import { buildClipVocab } from '../../src/engines/diffusion/tokenizer/index.ts';
import { textEncoderGraph, unetGraph, vaeDecoderGraph, vaeEncoderGraph, type IdsType, type PartContext, type TimestepKind } from './graphs.ts';
import type { GraphBuilder } from './onnx.ts';

export type { IdsType, TimestepKind } from './graphs.ts';

export const SCHEDULER_PRESETS = {
  // stabilityai/sd-turbo scheduler/scheduler_config.json
  'euler-trailing': {
    _class_name: 'EulerDiscreteScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false,
    interpolation_type: 'linear', num_train_timesteps: 1000, prediction_type: 'epsilon', set_alpha_to_one: false, skip_prk_steps: true,
    steps_offset: 1, timestep_spacing: 'trailing', trained_betas: null, use_karras_sigmas: false,
  },
  // stabilityai/sdxl-turbo
  'euler-ancestral-trailing': {
    _class_name: 'EulerAncestralDiscreteScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear',
    num_train_timesteps: 1000, prediction_type: 'epsilon', steps_offset: 1, timestep_spacing: 'trailing', trained_betas: null,
  },
  // runwayml/stable-diffusion-v1-5
  pndm: {
    _class_name: 'PNDMScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false,
    num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, trained_betas: null,
  },
  ddim: {
    _class_name: 'DDIMScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false,
    num_train_timesteps: 1000, prediction_type: 'epsilon', set_alpha_to_one: false, steps_offset: 1, timestep_spacing: 'leading',
  },
  // SimianLuo/LCM_Dreamshaper_v7
  lcm: {
    _class_name: 'LCMScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false,
    num_train_timesteps: 1000, original_inference_steps: 50, prediction_type: 'epsilon', set_alpha_to_one: true, steps_offset: 1,
    timestep_scaling: 10, timestep_spacing: 'leading', trained_betas: null,
  },
} as const;
export type SchedulerPreset = keyof typeof SCHEDULER_PRESETS;

export interface TinyModelOptions {
  /** dtype of text_encoder `input_ids`; default int32 (diffusers' script, optimum ≤ 1.23). */
  idsType?: IdsType;
  /** default float-vector (diffusers' script). */
  timestep?: TimestepKind;
  /** A 9-channel UNet (latents ‖ mask ‖ masked-image latents; §1.5). */
  inpainting?: boolean;
  /** float16 for every float input, output and weight (as an fp16 export); the timestep too unless int64. */
  fp16?: boolean;
  /** UNet weights in `unet/model.onnx_data`, as optimum writes big UNets. */
  externalData?: boolean;
  /** VAE encoder outputs `latent_parameters` [B,8,h,w] (optimum ≥ 1.23) instead of `latent_sample`. */
  latentParameters?: boolean;
  /** Channel dims as names (`num_channels`), as the real exporters declare them, instead of 4/9. */
  symbolicChannels?: boolean;
  /** A preset name or a whole scheduler_config.json object; default euler-trailing (SD-Turbo). */
  scheduler?: SchedulerPreset | Record<string, unknown>;
  /** SD 1.x pads with `<|endoftext|>`, SD 2.x/SD-Turbo with `!`. */
  padToken?: '<|endoftext|>' | '!';
  /** Width of the text encoder output (the UNet's cross-attention size). Default 32. */
  hiddenSize?: number;
  /** Seed of the random weights; the same seed writes byte-identical files. Default 0. */
  seed?: number;
}

export interface TinyModelInfo {
  folder: string;
  /** Paths relative to `folder`, in the order written. */
  files: string[];
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  hiddenSize: number;
  unetInChannels: 4 | 9;
}

/** A few merges so that common prompt words become single tokens, as with the real 48,894. */
export const TINY_MERGES = [
  'a n', 'an d</w>', 'c a', 'ca t</w>', 'd o', 'do g</w>', 'i n', 'in g</w>', 'o f</w>', 'p h', 'o t', 'ph ot', 'phot o</w>',
  'r e', 't h', 'th e</w>', 'e d</w>', 'o n</w>',
];

const MAX_LENGTH = 77;

export async function writeTinyModel(folder: string, options: TinyModelOptions = {}): Promise<TinyModelInfo> {
  const hiddenSize = options.hiddenSize ?? 32;
  const inChannels = options.inpainting ? 9 : 4;
  const vocab = buildClipVocab(TINY_MERGES);
  const vocabSize = Object.keys(vocab).length;
  const files: string[] = [];
  const write = async (path: string, content: string | Uint8Array) => {
    await mkdir(join(folder, path, '..'), { recursive: true });
    await writeFile(join(folder, path), content);
    files.push(path);
  };
  const json = (path: string, value: unknown) => write(path, `${JSON.stringify(value, null, 2)}\n`);
  const onnx = async (part: string, graph: GraphBuilder, externalData = false) => {
    const { model, data } = graph.encode({ externalData: externalData ? 'model.onnx_data' : undefined });
    await write(`${part}/model.onnx`, model);
    if (data) await write(`${part}/model.onnx_data`, data);
  };

  await json('model_index.json', modelIndex(options, options.inpainting ?? false));
  const scheduler = options.scheduler ?? 'euler-trailing';
  await json('scheduler/scheduler_config.json', typeof scheduler === 'string' ? SCHEDULER_PRESETS[scheduler] : scheduler);
  await writeTokenizer(json, write, vocab, options.padToken ?? '<|endoftext|>');

  // One weight stream, consumed in a fixed order, makes the files a function of the seed alone.
  const ctx: PartContext = { normal: normalSource(options.seed ?? 0), float: options.fp16 ? 'float16' : 'float32', hiddenSize };
  const symbolicChannels = options.symbolicChannels ?? false;
  await onnx('text_encoder', textEncoderGraph(ctx, { ids: options.idsType ?? 'int32', vocabSize, maxLength: MAX_LENGTH }));
  const unetCtx = { ...ctx, external: options.externalData ?? false };
  await onnx('unet', unetGraph(unetCtx, { inChannels, timestep: options.timestep ?? 'float-vector', symbolicChannels }), unetCtx.external);
  await onnx('vae_decoder', vaeDecoderGraph(ctx, { symbolicChannels }));
  await onnx('vae_encoder', vaeEncoderGraph(ctx, { latentParameters: options.latentParameters ?? false }));
  await writeComponentConfigs(json, { hiddenSize, vocabSize, inChannels });

  return { folder, files, vocabSize, bosTokenId: vocab['<|startoftext|>']!, eosTokenId: vocab['<|endoftext|>']!, hiddenSize, unetInChannels: inChannels };
}

export function modelIndex(options: TinyModelOptions, inpainting: boolean) {
  const scheduler = options.scheduler ?? 'euler-trailing';
  const schedulerClass = typeof scheduler === 'string' ? SCHEDULER_PRESETS[scheduler]._class_name : String(scheduler._class_name);
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

type WriteJson = (path: string, value: unknown) => Promise<void>;

/** The slow CLIPTokenizer files, with ids in the real CLIP layout (bytes, merges, BOS, EOS). */
export async function writeTokenizer(json: WriteJson, write: (path: string, text: string) => Promise<void>, vocab: Record<string, number>, pad: string) {
  const special = { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: pad, unk_token: '<|endoftext|>' };
  await json('tokenizer/vocab.json', vocab);
  await write('tokenizer/merges.txt', ['#version: 0.2', ...TINY_MERGES, ''].join('\n'));
  await json('tokenizer/special_tokens_map.json', special);
  await json('tokenizer/tokenizer_config.json', {
    ...special, add_prefix_space: false, clean_up_tokenization_spaces: true, do_lower_case: true, errors: 'replace',
    model_max_length: MAX_LENGTH, tokenizer_class: 'CLIPTokenizer',
  });
}

/**
 * optimum writes each part's config.json (§1.1). Four VAE blocks make the scale factor 8, matching
 * the graphs (the diffusers test VAEs have 2 blocks and factor 2: §1.3, §6.5).
 */
async function writeComponentConfigs(json: WriteJson, sizes: { hiddenSize: number; vocabSize: number; inChannels: number }) {
  const blocks = [32, 32, 32, 32];
  await json('text_encoder/config.json', {
    _class_name: 'CLIPTextModel', architectures: ['CLIPTextModel'], hidden_size: sizes.hiddenSize, max_position_embeddings: MAX_LENGTH,
    vocab_size: sizes.vocabSize, num_hidden_layers: 1, model_type: 'clip_text_model',
  });
  await json('unet/config.json', {
    _class_name: 'UNet2DConditionModel', in_channels: sizes.inChannels, out_channels: 4, sample_size: 64,
    cross_attention_dim: sizes.hiddenSize, block_out_channels: blocks, time_cond_proj_dim: null, addition_embed_type: null,
  });
  const vae = { _class_name: 'AutoencoderKL', in_channels: 3, out_channels: 3, latent_channels: 4, block_out_channels: blocks, sample_size: 512, scaling_factor: 0.18215 };
  await json('vae_decoder/config.json', vae);
  await json('vae_encoder/config.json', vae);
}
