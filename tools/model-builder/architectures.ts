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

export type ArchitecturePreset = 'small' | 'sd-turbo' | 'sd15';
export const ARCHITECTURE_PRESETS: readonly ArchitecturePreset[] = ['small', 'sd-turbo', 'sd15'];

interface Architecture {
  unet: UnetConfig;
  /** vocabSize null: the tokenizer's own (small preset). */
  text: Omit<ClipTextConfig, 'vocabSize'> & { vocabSize: number | null };
  vae: VaeConfig;
  scheduler: SchedulerPreset;
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
    text: {
      hiddenSize: 768,
      layers: 12,
      heads: 12,
      intermediateSize: 3072,
      activation: 'quick_gelu',
      vocabSize: CLIP_VOCAB,
      maxPositions: CLIP_POSITIONS,
    },
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
};

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
   * sd-turbo and sd15, its width-8 variant for small (whose own VAE is narrowed the same way).
   */
  tinyAutoencoder?: boolean;
  /** Unmasked attention as com.microsoft MultiHeadAttention nodes (layers.ts, NetOptions.fusedAttention). */
  fusedAttention?: boolean;
  /** The UNet's transformer-block linear layers as int8 DynamicQuantizeMatMul (layers.ts, NetOptions.int8Linear). */
  int8TransformerLinear?: boolean;
}

export type PartName = 'text_encoder' | 'unet' | 'vae_decoder' | 'vae_encoder';
const PARTS: readonly PartName[] = ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'];

export interface ParameterCounts extends Record<PartName, number> {
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
  bytes: Record<PartName, number>;
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
    if (part === 'text_encoder') buildClipText(net, textConfig(arch), { ids: options.idsType ?? 'int32' });
    else if (part === 'unet') buildUnet(net, arch.unet, { timestep: options.timestep ?? 'float-vector' });
    else if (part === 'vae_decoder') buildVaeDecoder(net, arch.vae);
    else buildVaeEncoder(net, arch.vae, { latentParameters: options.latentParameters ?? false });
    return net;
  };
  const probe = build(make(false));
  const bytes = probe.parameters * (float === 'float16' ? 2 : 4);
  return bytes > EXTERNAL_DATA_BYTES ? build(make(true)) : probe;
}

function textConfig(arch: Architecture): ClipTextConfig {
  return { ...arch.text, vocabSize: arch.text.vocabSize ?? tokenizerVocab().size };
}

/** Parameters per part, counted from the graphs' initializers without drawing any weight. */
export function countParameters(preset: ArchitecturePreset): ParameterCounts {
  const counts = Object.fromEntries(
    PARTS.map((part) => [part, buildPart(preset, part, { weights: null }).parameters]),
  ) as Record<PartName, number>;
  const vae = counts.vae_encoder + counts.vae_decoder;
  return { ...counts, vae, total: counts.text_encoder + counts.unet + vae };
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
    weights: new WeightStream(options.seed ?? 0, PARTS.indexOf(part)),
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

  await json('model_index.json', modelIndex('sd', SCHEDULER_PRESETS[arch.scheduler]._class_name, false));
  await json('scheduler/scheduler_config.json', SCHEDULER_PRESETS[arch.scheduler]);
  const { vocab } = tokenizerVocab();
  await writeTokenizer(json, write, vocab, arch.padToken);

  const counts = {} as Record<PartName, number>;
  const bytes = {} as Record<PartName, number>;
  for (const [stream, part] of PARTS.entries()) {
    // One weight stream per part: a part's weights depend on the seed and the part alone.
    const net = buildPart(preset, part, { ...options, weights: new WeightStream(seed, stream) });
    await mkdir(join(folder, part), { recursive: true });
    const external = net.g.initializerInfo().some((i) => i.external);
    const written = net.g.write(join(folder, part, 'model.onnx'), external ? { externalData: 'model.onnx_data' } : {});
    files.push(`${part}/model.onnx`, ...(external ? [`${part}/model.onnx_data`] : []));
    counts[part] = net.parameters;
    bytes[part] = written.modelBytes + written.dataBytes;
  }

  const ids = { bos: vocab['<|startoftext|>']!, eos: vocab['<|endoftext|>']!, pad: vocab[arch.padToken]! };
  await json('text_encoder/config.json', clipTextConfigJson(textConfig(arch), ids));
  await json('unet/config.json', unetConfigJson(arch.unet));
  await json('vae_decoder/config.json', vaeConfigJson(arch.vae));
  await json('vae_encoder/config.json', vaeConfigJson(arch.vae));

  let tinyAutoencoder: TinyAutoencoderInfo | undefined;
  if (options.tinyAutoencoder) {
    tinyAutoencoder = await writeTinyAutoencoder(folder, {
      config: preset === 'small' ? TAESD_NARROW : TAESD,
      seed,
      fp16: options.fp16,
    });
    files.push(...tinyAutoencoder.files);
  }

  const vae = counts.vae_encoder + counts.vae_decoder;
  return {
    folder,
    preset,
    files,
    parameters: { ...counts, vae, total: counts.text_encoder + counts.unet + vae },
    bytes,
    ...(tinyAutoencoder ? { tinyAutoencoder } : {}),
  };
}
