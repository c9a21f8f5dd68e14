// Writes a Stable Diffusion ONNX folder whose graphs have the real architecture of a published model
// (random weights), so that benchmarks measure the compute a real model costs without downloading
// one. Same layout and I/O contract as writeTinyModel (docs/diffusion.md).
//
// The proof that the architecture is the real one is the parameter count: countParameters gives
// the published numbers (test/tools/architectures.test.ts), from the graphs' own initializers.
import { mkdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { buildClipVocab } from '../../src/engines/diffusion/tokenizer/index.ts';
import { buildClipText, type ClipTextConfig, clipTextConfigJson } from './clip-text.ts';
import type { IdsType, TimestepKind } from './graphs.ts';
import { type FloatType, Net, WeightStream } from './layers.ts';
import { TAESD, TAESD_NARROW, type TinyAutoencoderInfo, writeTinyAutoencoder } from './taesd.ts';
import {
  folderWriter,
  modelIndex,
  SCHEDULER_PRESETS,
  type SchedulerPreset,
  TINY_MERGES,
  writeTokenizer,
} from './tiny-sd.ts';
import { buildUnet, type UnetConfig, unetConfigJson } from './unet.ts';
import { buildVaeDecoder, buildVaeEncoder, type VaeConfig, vaeConfigJson } from './vae.ts';

export type ArchitecturePreset = 'small' | 'sd-turbo' | 'sd15' | 'sdxl-turbo' | 'sdxl-small';
export const ARCHITECTURE_PRESETS: readonly ArchitecturePreset[] = [
  'small',
  'sd-turbo',
  'sd15',
  'sdxl-turbo',
  'sdxl-small',
];

/** vocabSize null: the tokenizer's own (small presets). */
type TextArchitecture = Omit<ClipTextConfig, 'vocabSize'> & { vocabSize: number | null };

interface Architecture {
  unet: UnetConfig;
  text: TextArchitecture;
  /** SDXL's second encoder (text_encoder_2, tokenizer_2 padding with '!'); `text` then has hidden states too. */
  text2?: TextArchitecture;
  vae: VaeConfig;
  scheduler: SchedulerPreset;
  /** The pad token of tokenizer/. */
  padToken: '!' | '<|endoftext|>';
}

/** SD 1.x/2.x AutoencoderKL (stabilityai/sd-vae-ft-mse, the vae of both families). */
const SD_VAE: VaeConfig = {
  blockOutChannels: [128, 256, 512, 512],
  layersPerBlock: 2,
  latentChannels: 4,
  normGroups: 32,
  sampleSize: 512,
  scalingFactor: 0.18215,
};
const SD_UNET = {
  blockOutChannels: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  crossAttention: [true, true, true, false],
  normGroups: 32,
  sampleSize: 64,
};
const CLIP_POSITIONS = 77;
const CLIP_VOCAB = 49408;
/** OpenAI CLIP ViT-L/14's text tower: SD 1.x's text_encoder and SDXL's first. */
const CLIP_L_TEXT = {
  hiddenSize: 768,
  layers: 12,
  heads: 12,
  intermediateSize: 3072,
  activation: 'quick_gelu',
  vocabSize: CLIP_VOCAB,
  maxPositions: CLIP_POSITIONS,
} as const;

const ARCHITECTURES: Record<ArchitecturePreset, Architecture> = {
  // stabilityai/sd-turbo = stable-diffusion-2-1-base: unet/config.json, text_encoder/config.json (OpenCLIP ViT-H, 23
  // layers).
  'sd-turbo': {
    unet: { ...SD_UNET, heads: [5, 10, 20, 20], crossAttentionDim: 1024, useLinearProjection: true },
    text: {
      hiddenSize: 1024,
      layers: 23,
      heads: 16,
      intermediateSize: 4096,
      activation: 'gelu',
      vocabSize: CLIP_VOCAB,
      maxPositions: CLIP_POSITIONS,
    },
    vae: SD_VAE,
    scheduler: 'euler-trailing',
    padToken: '!',
  },
  // runwayml/stable-diffusion-v1-5: attention_head_dim 8, CLIP ViT-L/14 text tower.
  sd15: {
    unet: { ...SD_UNET, heads: [8, 8, 8, 8], crossAttentionDim: 768, useLinearProjection: false },
    text: CLIP_L_TEXT,
    vae: SD_VAE,
    scheduler: 'pndm',
    padToken: '<|endoftext|>',
  },
  // Every block kind of sd-turbo at small widths: a 512² generation in about a second on 2 cores.
  small: {
    unet: {
      blockOutChannels: [32, 64, 64, 64],
      layersPerBlock: 2,
      crossAttention: [true, true, true, false],
      heads: [2, 2, 2, 2],
      crossAttentionDim: 64,
      useLinearProjection: true,
      normGroups: 32,
      sampleSize: 64,
    },
    text: {
      hiddenSize: 64,
      layers: 2,
      heads: 2,
      intermediateSize: 256,
      activation: 'gelu',
      vocabSize: null,
      maxPositions: CLIP_POSITIONS,
    },
    // The VAE's full-resolution blocks dominate a small generation, hence its narrow widths (and 8 groups to allow
    // them).
    vae: { ...SD_VAE, blockOutChannels: [8, 16, 32, 32], normGroups: 8 },
    scheduler: 'euler-trailing',
    padToken: '!',
  },
  // stabilityai/sdxl-turbo = stable-diffusion-xl-base-1.0's architecture (unet/, text_encoder/, text_encoder_2/ and
  // vae/config.json; the Turbo UNet's sample_size is 64: 512² native). Three levels, the first without attention,
  // 1/2/10 transformer blocks per level (the mid block 10), 64-wide heads, cross-attention on both encoders' states
  // (768 + 1280), the text_time added embedding; CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 (32 layers, with its
  // text_projection) text towers, both with hidden states; SD's VAE with scaling factor 0.13025.
  'sdxl-turbo': {
    unet: {
      blockOutChannels: [320, 640, 1280],
      layersPerBlock: 2,
      crossAttention: [false, true, true],
      heads: [5, 10, 20],
      crossAttentionDim: 2048,
      useLinearProjection: true,
      normGroups: 32,
      sampleSize: 64,
      transformerLayers: [1, 2, 10],
      textTime: { textEmbedsDim: 1280, timeEmbedDim: 256 },
    },
    text: { ...CLIP_L_TEXT, hiddenStates: true },
    text2: {
      hiddenSize: 1280,
      layers: 32,
      heads: 20,
      intermediateSize: 5120,
      activation: 'gelu',
      vocabSize: CLIP_VOCAB,
      maxPositions: CLIP_POSITIONS,
      projectionDim: 1280,
      hiddenStates: true,
    },
    vae: { ...SD_VAE, sampleSize: 1024, scalingFactor: 0.13025 },
    scheduler: 'euler-ancestral-trailing',
    padToken: '<|endoftext|>',
  },
  // Every block kind of sdxl-turbo at small widths (per-level depths 1/2/3, both encoders, text_time), for tests.
  'sdxl-small': {
    unet: {
      blockOutChannels: [32, 64, 64],
      layersPerBlock: 2,
      crossAttention: [false, true, true],
      heads: [2, 2, 2],
      crossAttentionDim: 64 + 96,
      useLinearProjection: true,
      normGroups: 32,
      sampleSize: 64,
      transformerLayers: [1, 2, 3],
      textTime: { textEmbedsDim: 96, timeEmbedDim: 16 },
    },
    text: {
      hiddenSize: 64,
      layers: 2,
      heads: 2,
      intermediateSize: 256,
      activation: 'quick_gelu',
      vocabSize: null,
      maxPositions: CLIP_POSITIONS,
      hiddenStates: true,
    },
    text2: {
      hiddenSize: 96,
      layers: 3,
      heads: 2,
      intermediateSize: 384,
      activation: 'gelu',
      vocabSize: null,
      maxPositions: CLIP_POSITIONS,
      projectionDim: 96,
      hiddenStates: true,
    },
    vae: { ...SD_VAE, blockOutChannels: [8, 16, 32, 32], normGroups: 8, sampleSize: 512, scalingFactor: 0.13025 },
    scheduler: 'euler-ancestral-trailing',
    padToken: '<|endoftext|>',
  },
};

const isXl = (preset: ArchitecturePreset) => ARCHITECTURES[preset].text2 !== undefined;
/** The small presets, whose tiny autoencoder is TAESD's width-8 variant. */
const SMALL: readonly ArchitecturePreset[] = ['small', 'sdxl-small'];

export interface ArchitectureOptions {
  /** Seed of the random weights; the same seed writes byte-identical files. Default 0. */
  seed?: number;
  /** float16 weights and I/O, as an fp16 export. */
  fp16?: boolean;
  /** dtype of text_encoder `input_ids`; default int32 (diffusers' script). */
  idsType?: IdsType;
  /** Default float-vector (diffusers' script). */
  timestep?: TimestepKind;
  /** VAE encoder outputs `latent_parameters` (mean ‖ logvar) instead of `latent_sample`. */
  latentParameters?: boolean;
  /**
   * Also write the tiny autoencoder (vae_tiny_decoder/, vae_tiny_encoder/): TAESD's real size for
   * sd-turbo and sd15 (TAESDXL, the same architecture, for sdxl-turbo), its width-8 variant for the small presets
   * (whose own VAE is narrowed the same way).
   */
  tinyAutoencoder?: boolean;
  /** Unmasked attention as com.microsoft MultiHeadAttention nodes (layers.ts, NetOptions.fusedAttention). */
  fusedAttention?: boolean;
  /** The UNet's transformer-block linear layers as int8 DynamicQuantizeMatMul (layers.ts, NetOptions.int8Linear). */
  int8TransformerLinear?: boolean;
}

export type PartName = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae_decoder' | 'vae_encoder';
const SD_PARTS: readonly PartName[] = ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'];
const SDXL_PARTS: readonly PartName[] = ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder'];
const partsOf = (preset: ArchitecturePreset) => (isXl(preset) ? SDXL_PARTS : SD_PARTS);
/** A part's weight stream: text_encoder_2 takes the last, so the other parts draw the same weights as before it existed. */
const weightStreamOf = (part: PartName) => (part === 'text_encoder_2' ? SD_PARTS.length : SD_PARTS.indexOf(part));

export interface ParameterCounts extends Record<Exclude<PartName, 'text_encoder_2'>, number> {
  /** SDXL presets only. */
  text_encoder_2?: number;
  /** vae_encoder + vae_decoder: the whole AutoencoderKL. */
  vae: number;
  total: number;
}

export interface ArchitectureModelInfo {
  folder: string;
  preset: ArchitecturePreset;
  /** Paths relative to `folder`, in the order written. */
  files: string[];
  parameters: ParameterCounts;
  /** Bytes of each part's model.onnx plus its external data. */
  bytes: Partial<Record<PartName, number>>;
  /** With the tinyAutoencoder option. */
  tinyAutoencoder?: TinyAutoencoderInfo;
}

/**
 * Weights above this go to `model.onnx_data` (protobuf caps a file at 2 GB; a big inline part also costs memory twice).
 */
const EXTERNAL_DATA_BYTES = 512 * 2 ** 20;

function tokenizerVocab() {
  const vocab = buildClipVocab(TINY_MERGES);
  return { vocab, size: Object.keys(vocab).length };
}

/** One part's graph; with `weights` null it only counts (no weight is drawn). */
function buildPart(
  preset: ArchitecturePreset,
  part: PartName,
  options: ArchitectureOptions & { weights: WeightStream | null },
): Net {
  const arch = ARCHITECTURES[preset];
  const float: FloatType = options.fp16 ? 'float16' : 'float32';
  const make = (external: boolean) =>
    new Net(part, {
      float,
      weights: options.weights,
      external,
      fusedAttention: options.fusedAttention,
      ...(part === 'unet' && options.int8TransformerLinear
        ? { int8Linear: (scope: string) => scope.includes('.attentions.') && !scope.includes('time_emb') }
        : {}),
    });
  // Built once to know its size, then again with external set when it is big: building is cheap, drawing happens at
  // write.
  const build = (net: Net) => {
    if (part === 'text_encoder') buildClipText(net, textConfig(arch.text), { ids: options.idsType ?? 'int32' });
    else if (part === 'text_encoder_2')
      buildClipText(net, textConfig(arch.text2!), { ids: options.idsType ?? 'int32' });
    else if (part === 'unet') buildUnet(net, arch.unet, { timestep: options.timestep ?? 'float-vector' });
    else if (part === 'vae_decoder') buildVaeDecoder(net, arch.vae);
    else buildVaeEncoder(net, arch.vae, { latentParameters: options.latentParameters ?? false });
    return net;
  };
  const probe = build(make(false));
  const bytes = probe.parameters * (float === 'float16' ? 2 : 4);
  return bytes > EXTERNAL_DATA_BYTES ? build(make(true)) : probe;
}

function textConfig(text: TextArchitecture): ClipTextConfig {
  return { ...text, vocabSize: text.vocabSize ?? tokenizerVocab().size };
}

/** The per-part counts with the whole VAE and the total added. */
function withTotals(counts: Partial<Record<PartName, number>>): ParameterCounts {
  const part = (name: PartName) => counts[name] ?? 0;
  const vae = part('vae_encoder') + part('vae_decoder');
  return {
    ...(counts as Record<Exclude<PartName, 'text_encoder_2'>, number>),
    vae,
    total: part('text_encoder') + part('text_encoder_2') + part('unet') + vae,
  };
}

/** Parameters per part, counted from the graphs' initializers without drawing any weight. */
export function countParameters(preset: ArchitecturePreset): ParameterCounts {
  return withTotals(
    Object.fromEntries(partsOf(preset).map((part) => [part, buildPart(preset, part, { weights: null }).parameters])),
  );
}

/**
 * One part alone, `<folder>/<part>/model.onnx` (and its external data): what the UNet profile and
 * the attention A/B need without writing the whole 5 GB folder. Same weights as the folder's part.
 */
export function writeArchitecturePart(
  folder: string,
  preset: ArchitecturePreset,
  part: PartName,
  options: ArchitectureOptions = {},
): { modelBytes: number; dataBytes: number } {
  const net = buildPart(preset, part, {
    ...options,
    weights: new WeightStream(options.seed ?? 0, weightStreamOf(part)),
  });
  mkdirSync(join(folder, part), { recursive: true });
  const external = net.g.initializerInfo().some((i) => i.external);
  return net.g.write(join(folder, part, 'model.onnx'), external ? { externalData: 'model.onnx_data' } : {});
}

export async function writeArchitectureModel(
  folder: string,
  preset: ArchitecturePreset,
  options: ArchitectureOptions = {},
): Promise<ArchitectureModelInfo> {
  if (!ARCHITECTURE_PRESETS.includes(preset))
    throw new Error(`preset must be one of ${ARCHITECTURE_PRESETS.join(', ')}, got "${String(preset)}"`);
  const arch = ARCHITECTURES[preset];
  const seed = options.seed ?? 0;
  const { files, write, json } = folderWriter(folder);

  const family = isXl(preset) ? 'sdxl' : 'sd';
  await json('model_index.json', modelIndex(family, SCHEDULER_PRESETS[arch.scheduler]._class_name, false));
  await json('scheduler/scheduler_config.json', SCHEDULER_PRESETS[arch.scheduler]);
  const { vocab } = tokenizerVocab();
  await writeTokenizer(json, write, vocab, arch.padToken);
  if (arch.text2) await writeTokenizer(json, write, vocab, '!', 'tokenizer_2');

  const counts: Partial<Record<PartName, number>> = {};
  const bytes: Partial<Record<PartName, number>> = {};
  for (const part of partsOf(preset)) {
    // One weight stream per part: a part's weights depend on the seed and the part alone.
    const net = buildPart(preset, part, { ...options, weights: new WeightStream(seed, weightStreamOf(part)) });
    await mkdir(join(folder, part), { recursive: true });
    const external = net.g.initializerInfo().some((i) => i.external);
    const written = net.g.write(join(folder, part, 'model.onnx'), external ? { externalData: 'model.onnx_data' } : {});
    files.push(`${part}/model.onnx`, ...(external ? [`${part}/model.onnx_data`] : []));
    counts[part] = net.parameters;
    bytes[part] = written.modelBytes + written.dataBytes;
  }

  const ids = { bos: vocab['<|startoftext|>']!, eos: vocab['<|endoftext|>']!, pad: vocab[arch.padToken]! };
  await json('text_encoder/config.json', clipTextConfigJson(textConfig(arch.text), ids));
  if (arch.text2) {
    const ids2 = { ...ids, pad: vocab['!']! };
    await json('text_encoder_2/config.json', clipTextConfigJson(textConfig(arch.text2), ids2));
  }
  await json('unet/config.json', unetConfigJson(arch.unet));
  await json('vae_decoder/config.json', vaeConfigJson(arch.vae));
  await json('vae_encoder/config.json', vaeConfigJson(arch.vae));

  let tinyAutoencoder: TinyAutoencoderInfo | undefined;
  if (options.tinyAutoencoder) {
    tinyAutoencoder = await writeTinyAutoencoder(folder, {
      config: SMALL.includes(preset) ? TAESD_NARROW : TAESD,
      seed,
      fp16: options.fp16,
    });
    files.push(...tinyAutoencoder.files);
  }

  return {
    folder,
    preset,
    files,
    parameters: withTotals(counts),
    bytes,
    ...(tinyAutoencoder ? { tinyAutoencoder } : {}),
  };
}
