// The tiny autoencoder (TAESD, and TAESDXL, which has the same architecture with other weights) as
// diffusers' AutoencoderTiny defines it (models/autoencoders/autoencoder_tiny.py, with EncoderTiny,
// DecoderTiny and AutoencoderTinyBlock in models/autoencoders/vae.py and unets/unet_2d_blocks.py),
// exported the way the optimum exporters split an autoencoder: vae_tiny_encoder = the encoder,
// vae_tiny_decoder = the decoder, each with the pipeline's [-1, 1] image convention inside the graph.
//
// Decoder (1,222,531 parameters at width 64): tanh(x/3)·3, conv 4→64, ReLU, then per stage its
// blocks and, except after the last, a ×2 nearest upsample and a bias-free conv; conv 64→3 last.
// Encoder (1,222,532): conv 3→64, then per stage a bias-free stride-2 conv (except the first) and
// its blocks; conv 64→4 last. A block is conv–ReLU–conv–ReLU–conv (3×3) plus the input, then ReLU.
// Parameter names follow the nn.Sequential indices of `decoder.layers` / `encoder.layers`.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { conv2d, type FloatType, Net, upsampleNearest2x, WeightStream } from './layers.ts';

export interface TinyAutoencoderConfig {
  /** Width of every stage (AutoencoderTiny: 64 for both encoder and decoder). */
  channels: number;
  /** Blocks per encoder stage; the first stage runs at full resolution. AutoencoderTiny: [1, 3, 3, 3]. */
  encoderBlocks: readonly number[];
  /** Blocks per decoder stage; the last stage runs at full resolution. AutoencoderTiny: [3, 3, 3, 1]. */
  decoderBlocks: readonly number[];
  latentChannels: number;
}

/** madebyollin/taesd and madebyollin/taesdxl (diffusers AutoencoderTiny defaults). */
export const TAESD: TinyAutoencoderConfig = {
  channels: 64,
  encoderBlocks: [1, 3, 3, 3],
  decoderBlocks: [3, 3, 3, 1],
  latentChannels: 4,
};
/** The same graph at width 8, for tests that want the real op sequence at a fraction of the compute. */
export const TAESD_NARROW: TinyAutoencoderConfig = { ...TAESD, channels: 8 };

/** The folder names, beside vae_decoder/ and vae_encoder/ in a model folder. */
export const TINY_DECODER_DIR = 'vae_tiny_decoder';
export const TINY_ENCODER_DIR = 'vae_tiny_encoder';

/** diffusers' AutoencoderTiny config.json; scaling_factor 1.0: its latents are the UNet's latents as they are. */
export function tinyAutoencoderConfigJson(config: TinyAutoencoderConfig) {
  const widths = (blocks: readonly number[]) => blocks.map(() => config.channels);
  return {
    _class_name: 'AutoencoderTiny',
    act_fn: 'relu',
    decoder_block_out_channels: widths(config.decoderBlocks),
    encoder_block_out_channels: widths(config.encoderBlocks),
    force_upcast: false,
    in_channels: 3,
    latent_channels: config.latentChannels,
    latent_magnitude: 3,
    latent_shift: 0.5,
    num_decoder_blocks: config.decoderBlocks,
    num_encoder_blocks: config.encoderBlocks,
    out_channels: 3,
    scaling_factor: 1.0,
    upsampling_scaling_factor: 2,
  };
}

function relu(net: Net, scope: string, x: string): string {
  return net.op(scope, 'Relu', [x]);
}

/** AutoencoderTinyBlock with equal widths: ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x); no skip conv is needed. */
function tinyBlock(net: Net, scope: string, x: string, channels: number): string {
  let h = relu(net, scope, conv2d(net, `${scope}.conv.0`, x, channels, channels, { kernel: 3 }));
  h = relu(net, scope, conv2d(net, `${scope}.conv.2`, h, channels, channels, { kernel: 3 }));
  h = conv2d(net, `${scope}.conv.4`, h, channels, channels, { kernel: 3 });
  return relu(net, scope, net.op(scope, 'Add', [h, x]));
}

/** latent_sample [B, 4, h, w] → sample [B, 3, 8h, 8w] in about [-1, 1] (DecoderTiny's output ·2 − 1). */
export function buildTinyDecoder(net: Net, config: TinyAutoencoderConfig): void {
  const { channels: c, decoderBlocks } = config;
  const latent = net.g.input('latent_sample', net.float, [
    'batch_size',
    config.latentChannels,
    'height_latent',
    'width_latent',
  ]);
  // The soft clamp of DecoderTiny.forward: tanh(x / 3) · 3.
  const clamped = net.op('decoder.clamp', 'Mul', [
    net.op('decoder.clamp', 'Tanh', [net.op('decoder.clamp', 'Div', [latent, net.scalar(3)])]),
    net.scalar(3),
  ]);
  let index = 0;
  const scope = () => `decoder.layers.${index++}`;
  let h = conv2d(net, scope(), clamped, config.latentChannels, c, { kernel: 3 });
  h = relu(net, scope(), h);
  decoderBlocks.forEach((blocks, stage) => {
    for (let j = 0; j < blocks; j++) h = tinyBlock(net, scope(), h, c);
    if (stage < decoderBlocks.length - 1) {
      h = upsampleNearest2x(net, scope(), h);
      h = conv2d(net, scope(), h, c, c, { kernel: 3, bias: false });
    }
  });
  h = conv2d(net, scope(), h, c, 3, { kernel: 3 });
  // TAESD decodes to [0, 1]; diffusers maps it to the pipeline's [-1, 1].
  net.g.node('Sub', [net.op('decoder.out', 'Mul', [h, net.scalar(2)]), net.scalar(1)], ['sample']);
  net.g.output('sample', net.float, ['batch_size', 3, 'height', 'width']);
}

/** sample [B, 3, H, W] in [-1, 1] → latent_sample [B, 4, H/8, W/8], already in the UNet's latent space. */
export function buildTinyEncoder(net: Net, config: TinyAutoencoderConfig): void {
  const { channels: c, encoderBlocks } = config;
  const image = net.g.input('sample', net.float, ['batch_size', 3, 'height', 'width']);
  // EncoderTiny.forward: the pipeline's [-1, 1] to TAESD's [0, 1].
  const unit = net.op('encoder.in', 'Div', [net.op('encoder.in', 'Add', [image, net.scalar(1)]), net.scalar(2)]);
  let index = 0;
  const scope = () => `encoder.layers.${index++}`;
  let h = unit;
  encoderBlocks.forEach((blocks, stage) => {
    h =
      stage === 0
        ? conv2d(net, scope(), h, 3, c, { kernel: 3 })
        : conv2d(net, scope(), h, c, c, { kernel: 3, stride: 2, bias: false });
    for (let j = 0; j < blocks; j++) h = tinyBlock(net, scope(), h, c);
  });
  net.g.node('Identity', [conv2d(net, scope(), h, c, config.latentChannels, { kernel: 3 })], ['latent_sample']);
  net.g.output('latent_sample', net.float, ['batch_size', config.latentChannels, 'height_latent', 'width_latent']);
}

export interface TinyAutoencoderInfo {
  /** Paths relative to the model folder, in the order written. */
  files: string[];
  parameters: { decoder: number; encoder: number };
  /** Bytes of each model.onnx. */
  bytes: { decoder: number; encoder: number };
}

function buildPart(
  part: 'decoder' | 'encoder',
  config: TinyAutoencoderConfig,
  options: { float: FloatType; weights: WeightStream | null },
): Net {
  const net = new Net(part === 'decoder' ? TINY_DECODER_DIR : TINY_ENCODER_DIR, { ...options, external: false });
  if (part === 'decoder') buildTinyDecoder(net, config);
  else buildTinyEncoder(net, config);
  return net;
}

/** Parameters of each half, from the graphs' own initializers (no weight is drawn). */
export function countTinyAutoencoderParameters(config: TinyAutoencoderConfig = TAESD): {
  decoder: number;
  encoder: number;
} {
  const count = (part: 'decoder' | 'encoder') =>
    buildPart(part, config, { float: 'float32', weights: null }).parameters;
  return { decoder: count('decoder'), encoder: count('encoder') };
}

/**
 * Writes vae_tiny_decoder/ and vae_tiny_encoder/ (model.onnx and AutoencoderTiny's config.json)
 * into a model folder, random weights from `seed`; the same seed writes the same bytes.
 */
export async function writeTinyAutoencoder(
  folder: string,
  options: { config?: TinyAutoencoderConfig; seed?: number; fp16?: boolean } = {},
): Promise<TinyAutoencoderInfo> {
  const config = options.config ?? TAESD;
  const float: FloatType = options.fp16 ? 'float16' : 'float32';
  const files: string[] = [];
  const parameters = { decoder: 0, encoder: 0 };
  const bytes = { decoder: 0, encoder: 0 };
  // Streams 100 and 101: unrelated to the weight streams of the other parts of a model folder.
  for (const [stream, part] of (['decoder', 'encoder'] as const).entries()) {
    const dir = part === 'decoder' ? TINY_DECODER_DIR : TINY_ENCODER_DIR;
    const net = buildPart(part, config, { float, weights: new WeightStream(options.seed ?? 0, 100 + stream) });
    await mkdir(join(folder, dir), { recursive: true });
    bytes[part] = net.g.write(join(folder, dir, 'model.onnx')).modelBytes;
    await writeFile(
      join(folder, dir, 'config.json'),
      `${JSON.stringify(tinyAutoencoderConfigJson(config), null, 2)}\n`,
    );
    files.push(`${dir}/model.onnx`, `${dir}/config.json`);
    parameters[part] = net.parameters;
  }
  return { files, parameters, bytes };
}
