// diffusers AutoencoderKL (models/autoencoders/autoencoder_kl.py, vae.py) split as the exporters
// split it (docs/diffusion.md, "Tensor names, dtypes and shapes"): vae_encoder = Encoder + quant_conv, vae_decoder =
// post_quant_conv + Decoder. Together they hold every AutoencoderKL parameter.
import {
  conv2d,
  fromTokens,
  groupNorm,
  linear,
  multiHeadAttention,
  type Net,
  resnetBlock,
  silu,
  toTokens,
  upsampleNearest2x,
} from './layers.ts';

export interface VaeConfig {
  blockOutChannels: readonly number[];
  layersPerBlock: number;
  latentChannels: number;
  normGroups: number;
  sampleSize: number;
  scalingFactor: number;
}

const EPS = 1e-6;

/** diffusers' vae config.json (optimum writes it into both vae_encoder/ and vae_decoder/). */
export function vaeConfigJson(config: VaeConfig) {
  const n = config.blockOutChannels.length;
  return {
    _class_name: 'AutoencoderKL',
    act_fn: 'silu',
    block_out_channels: config.blockOutChannels,
    down_block_types: Array(n).fill('DownEncoderBlock2D'),
    in_channels: 3,
    latent_channels: config.latentChannels,
    layers_per_block: config.layersPerBlock,
    norm_num_groups: config.normGroups,
    out_channels: 3,
    sample_size: config.sampleSize,
    scaling_factor: config.scalingFactor,
    up_block_types: Array(n).fill('UpDecoderBlock2D'),
  };
}

/**
 * The encoder: sample [B, 3, H, W] → latent_parameters [B, 2·latent, H/8, W/8] (mean ‖ logvar,
 * optimum ≥ 1.23) or latent_sample [B, latent, …]. The legacy diffusers script bakes `.sample()`
 * into latent_sample (mean + σ·noise); this graph gives the mean instead, so the output is a
 * function of the input (the noise costs nothing next to the convolutions).
 */
export function buildVaeEncoder(net: Net, config: VaeConfig, options: { latentParameters: boolean }): void {
  const { blockOutChannels: channels, normGroups: groups } = config;
  const image = net.g.input('sample', net.float, ['batch_size', 3, 'height', 'width']);
  let h = conv2d(net, 'encoder.conv_in', image, 3, channels[0]!, { kernel: 3 });
  let width = channels[0]!;
  channels.forEach((out, i) => {
    for (let j = 0; j < config.layersPerBlock; j++) {
      h = resnetBlock(net, `encoder.down_blocks.${i}.resnets.${j}`, h, {
        inChannels: width,
        outChannels: out,
        groups,
        eps: EPS,
      });
      width = out;
    }
    // Downsample2D with padding 0: F.pad(x, (0, 1, 0, 1)) then a stride-2 conv.
    if (i < channels.length - 1)
      h = conv2d(net, `encoder.down_blocks.${i}.downsamplers.0.conv`, h, width, width, {
        kernel: 3,
        stride: 2,
        pads: [0, 0, 1, 1],
      });
  });
  h = midBlock(net, 'encoder.mid_block', h, width, groups);
  h = silu(net, 'encoder.conv_norm_out', groupNorm(net, 'encoder.conv_norm_out', h, width, groups, EPS));
  const moments = config.latentChannels * 2;
  h = conv2d(net, 'encoder.conv_out', h, width, moments, { kernel: 3 });
  const parameters = conv2d(net, 'quant_conv', h, moments, moments, { kernel: 1 });
  const [name, outChannels] = options.latentParameters
    ? ['latent_parameters', moments]
    : ['latent_sample', config.latentChannels];
  if (options.latentParameters) net.g.node('Identity', [parameters], [name]);
  else net.g.node('Slice', [parameters, net.int64([0]), net.int64([config.latentChannels]), net.int64([1])], [name]);
  net.g.output(name, net.float, ['batch_size', outChannels, 'height_latent', 'width_latent']);
}

/** The decoder: latent_sample [B, latent, h, w] → sample [B, 3, 8h, 8w]. */
export function buildVaeDecoder(net: Net, config: VaeConfig): void {
  const { normGroups: groups } = config;
  const channels = [...config.blockOutChannels].reverse();
  const latent = net.g.input('latent_sample', net.float, [
    'batch_size',
    config.latentChannels,
    'height_latent',
    'width_latent',
  ]);
  let h = conv2d(net, 'post_quant_conv', latent, config.latentChannels, config.latentChannels, { kernel: 1 });
  let width = channels[0]!;
  h = conv2d(net, 'decoder.conv_in', h, config.latentChannels, width, { kernel: 3 });
  h = midBlock(net, 'decoder.mid_block', h, width, groups);
  channels.forEach((out, i) => {
    for (let j = 0; j <= config.layersPerBlock; j++) {
      h = resnetBlock(net, `decoder.up_blocks.${i}.resnets.${j}`, h, {
        inChannels: width,
        outChannels: out,
        groups,
        eps: EPS,
      });
      width = out;
    }
    if (i < channels.length - 1) {
      h = conv2d(
        net,
        `decoder.up_blocks.${i}.upsamplers.0.conv`,
        upsampleNearest2x(net, `decoder.up_blocks.${i}`, h),
        width,
        width,
        { kernel: 3 },
      );
    }
  });
  h = silu(net, 'decoder.conv_norm_out', groupNorm(net, 'decoder.conv_norm_out', h, width, groups, EPS));
  net.g.node('Identity', [conv2d(net, 'decoder.conv_out', h, width, 3, { kernel: 3 })], ['sample']);
  net.g.output('sample', net.float, ['batch_size', 3, 'height', 'width']);
}

/** UNetMidBlock2D of the VAE: resnet, single-head self-attention over all pixels, resnet. */
function midBlock(net: Net, scope: string, x: string, channels: number, groups: number): string {
  let h = resnetBlock(net, `${scope}.resnets.0`, x, { inChannels: channels, outChannels: channels, groups, eps: EPS });
  const a = `${scope}.attentions.0`;
  const tokens = toTokens(net, a, groupNorm(net, `${a}.group_norm`, h, channels, groups, EPS));
  const q = linear(net, `${a}.to_q`, tokens, channels, channels);
  const k = linear(net, `${a}.to_k`, tokens, channels, channels);
  const v = linear(net, `${a}.to_v`, tokens, channels, channels);
  const attended = linear(net, `${a}.to_out.0`, multiHeadAttention(net, a, q, k, v, channels, 1), channels, channels);
  h = net.op(a, 'Add', [fromTokens(net, a, attended, h), h]);
  return resnetBlock(net, `${scope}.resnets.1`, h, { inChannels: channels, outChannels: channels, groups, eps: EPS });
}
