// diffusers UNet2DConditionModel (models/unets/unet_2d_condition.py, unet_2d_blocks.py,
// transformers/transformer_2d.py, attention.py) as an ONNX graph with the I/O contract of the
// exporters (docs/diffusion.md, "Tensor names, dtypes and shapes"): sample, timestep, encoder_hidden_states →
// out_sample.
//
// Head counts: SD configs name them `attention_head_dim` ([5, 10, 20, 20] for SD 2.x, 8 for SD 1.x),
// but diffusers reads the value as the number of heads ("num_attention_heads = num_attention_heads
// or attention_head_dim", a naming mistake kept for compatibility), so SD 2.x heads are 64 wide.
//
// SDXL (stable-diffusion-xl-base-1.0 and sdxl-turbo unet/config.json) adds two things: a per-level depth of the
// Transformer2DModels (`transformer_layers_per_block` [1, 2, 10]; the mid block takes the last level's), and the
// "text_time" added embedding: inputs text_embeds [B, 1280] and time_ids [B, 6]; each time id goes through the same
// sinusoid as the timestep at `addition_time_embed_dim` (256) channels, the six are concatenated after text_embeds
// (1280 + 6·256 = `projection_class_embeddings_input_dim` 2816) and a TimestepEmbedding (Linear → SiLU → Linear to
// the time embedding width) is added to the time embedding (diffusers UNet2DConditionModel.get_aug_embed).
import type { TimestepKind } from './graphs.ts';
import {
  conv2d,
  fromTokens,
  gelu,
  groupNorm,
  layerNorm,
  linear,
  multiHeadAttention,
  type Net,
  resnetBlock,
  silu,
  toTokens,
  upsampleNearest2x,
} from './layers.ts';

export interface UnetConfig {
  blockOutChannels: readonly number[];
  layersPerBlock: number;
  /** Per down block: CrossAttnDownBlock2D (true) or DownBlock2D (false); up blocks mirror them. */
  crossAttention: readonly boolean[];
  /** The config's `attention_head_dim`, read as head counts per down block (see above). */
  heads: readonly number[];
  crossAttentionDim: number;
  useLinearProjection: boolean;
  normGroups: number;
  sampleSize: number;
  /** `transformer_layers_per_block`, per down block (up blocks mirror it, the mid block takes the last); default 1. */
  transformerLayers?: readonly number[];
  /** SDXL's `addition_embed_type: "text_time"`: the width of text_embeds and `addition_time_embed_dim`. */
  textTime?: { textEmbedsDim: number; timeEmbedDim: number };
}

/** Number of time ids of SDXL's text_time conditioning (original size, crop corner, target size). */
const TIME_IDS = 6;

const IN_CHANNELS = 4;
const OUT_CHANNELS = 4;
const RESNET_EPS = 1e-5; // norm_eps
const TRANSFORMER_NORM_EPS = 1e-6; // Transformer2DModel's GroupNorm
const LAYER_NORM_EPS = 1e-5; // BasicTransformerBlock

/** diffusers' unet/config.json for this architecture. */
export function unetConfigJson(config: UnetConfig) {
  return {
    _class_name: 'UNet2DConditionModel',
    act_fn: 'silu',
    attention_head_dim: config.heads.every((h) => h === config.heads[0]) ? config.heads[0] : config.heads,
    block_out_channels: config.blockOutChannels,
    center_input_sample: false,
    cross_attention_dim: config.crossAttentionDim,
    down_block_types: config.crossAttention.map((c) => (c ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    downsample_padding: 1,
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: IN_CHANNELS,
    layers_per_block: config.layersPerBlock,
    mid_block_scale_factor: 1,
    mid_block_type: 'UNetMidBlock2DCrossAttn',
    norm_eps: RESNET_EPS,
    norm_num_groups: config.normGroups,
    out_channels: OUT_CHANNELS,
    sample_size: config.sampleSize,
    up_block_types: [...config.crossAttention].reverse().map((c) => (c ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    use_linear_projection: config.useLinearProjection,
    time_cond_proj_dim: null,
    addition_embed_type: config.textTime ? 'text_time' : null,
    ...(config.transformerLayers ? { transformer_layers_per_block: config.transformerLayers } : {}),
    ...(config.textTime
      ? {
          addition_time_embed_dim: config.textTime.timeEmbedDim,
          projection_class_embeddings_input_dim:
            config.textTime.textEmbedsDim + TIME_IDS * config.textTime.timeEmbedDim,
        }
      : {}),
  };
}

/** Adds the whole UNet to `net`: inputs, every block, and the out_sample output. */
export function buildUnet(net: Net, config: UnetConfig, options: { timestep: TimestepKind }): void {
  const { blockOutChannels: channels, layersPerBlock, normGroups: groups } = config;
  const g = net.g;
  const sample = g.input('sample', net.float, ['batch_size', IN_CHANNELS, 'height', 'width']);
  const timestepType = options.timestep === 'int64-vector' ? 'int64' : net.float;
  const timestep = g.input('timestep', timestepType, options.timestep === 'float-scalar' ? [] : ['steps']);
  const context = g.input('encoder_hidden_states', net.float, [
    'batch_size',
    'sequence_length',
    config.crossAttentionDim,
  ]);
  const textTime = config.textTime && {
    textEmbeds: g.input('text_embeds', net.float, ['batch_size', config.textTime.textEmbedsDim]),
    timeIds: g.input('time_ids', net.float, ['batch_size', TIME_IDS]),
    ...config.textTime,
  };

  const tembChannels = channels[0]! * 4;
  let tembInput = timeEmbedding(net, timestep, sample, channels[0]!, tembChannels);
  if (textTime) tembInput = net.op('add_embedding', 'Add', [tembInput, addedEmbedding(net, textTime, tembChannels)]);
  const temb = { input: tembInput, channels: tembChannels };
  const block = { groups, temb, context, config };
  const depth = (level: number) => config.transformerLayers?.[level] ?? 1;

  // Down: every resnet/attention output and every downsampler output is a skip connection.
  let h = conv2d(net, 'conv_in', sample, IN_CHANNELS, channels[0]!, { kernel: 3 });
  const skips: Array<{ tensor: string; channels: number }> = [{ tensor: h, channels: channels[0]! }];
  let width = channels[0]!;
  channels.forEach((out, i) => {
    for (let j = 0; j < layersPerBlock; j++) {
      const scope = `down_blocks.${i}`;
      h = resnetBlock(net, `${scope}.resnets.${j}`, h, {
        inChannels: width,
        outChannels: out,
        groups,
        eps: RESNET_EPS,
        temb,
      });
      width = out;
      if (config.crossAttention[i])
        h = transformer2d(net, `${scope}.attentions.${j}`, h, width, config.heads[i]!, depth(i), block);
      skips.push({ tensor: h, channels: width });
    }
    if (i < channels.length - 1) {
      h = conv2d(net, `down_blocks.${i}.downsamplers.0.conv`, h, width, width, { kernel: 3, stride: 2 });
      skips.push({ tensor: h, channels: width });
    }
  });

  // Mid: resnet, transformer, resnet at the lowest resolution.
  const last = channels.length - 1;
  h = resnetBlock(net, 'mid_block.resnets.0', h, {
    inChannels: width,
    outChannels: width,
    groups,
    eps: RESNET_EPS,
    temb,
  });
  h = transformer2d(net, 'mid_block.attentions.0', h, width, config.heads[last]!, depth(last), block);
  h = resnetBlock(net, 'mid_block.resnets.1', h, {
    inChannels: width,
    outChannels: width,
    groups,
    eps: RESNET_EPS,
    temb,
  });

  // Up: layers_per_block + 1 resnets per block, each taking one skip (concatenated on channels).
  for (let i = 0; i <= last; i++) {
    const level = last - i;
    const out = channels[level]!;
    for (let j = 0; j <= layersPerBlock; j++) {
      const scope = `up_blocks.${i}`;
      const skip = skips.pop()!;
      const joined = net.op(scope, 'Concat', [h, skip.tensor], { axis: 1 });
      h = resnetBlock(net, `${scope}.resnets.${j}`, joined, {
        inChannels: width + skip.channels,
        outChannels: out,
        groups,
        eps: RESNET_EPS,
        temb,
      });
      width = out;
      if (config.crossAttention[level])
        h = transformer2d(net, `${scope}.attentions.${j}`, h, width, config.heads[level]!, depth(level), block);
    }
    if (i < last)
      h = conv2d(net, `up_blocks.${i}.upsamplers.0.conv`, upsampleNearest2x(net, `up_blocks.${i}`, h), width, width, {
        kernel: 3,
      });
  }
  if (skips.length !== 0) throw new Error(`unet: ${skips.length} skip connections left over`);

  h = silu(net, 'conv_norm_out', groupNorm(net, 'conv_norm_out', h, width, groups, RESNET_EPS));
  net.g.node('Identity', [conv2d(net, 'conv_out', h, width, OUT_CHANNELS, { kernel: 3 })], ['out_sample']);
  g.output('out_sample', net.float, ['batch_size', OUT_CHANNELS, 'height', 'width']);
}

/**
 * Timesteps (flip_sin_to_cos, freq_shift 0) → TimestepEmbedding: [cos(t·f), sin(t·f)] with
 * f_i = exp(-ln(10⁴)·i/half), computed in float32 as diffusers does, then Linear → SiLU → Linear.
 * The timestep is expanded to the batch first (diffusers: `timesteps.expand(sample.shape[0])`).
 */
function timeEmbedding(
  net: Net,
  timestep: string,
  sample: string,
  sinusoidChannels: number,
  embedChannels: number,
): string {
  const scope = 'time_proj';
  const t = net.op(scope, 'Reshape', [net.op(scope, 'Cast', [timestep], { to: 1 }), net.int64([-1])]);
  const batch = net.op(scope, 'Shape', [sample], { start: 0, end: 1 });
  const column = net.op(scope, 'Unsqueeze', [net.op(scope, 'Expand', [t, batch]), net.int64([1])]);
  const embedded = net.op(scope, 'Cast', [sinusoid(net, scope, column, sinusoidChannels, 'time-frequencies')], {
    to: net.onnxFloat,
  });
  const hidden = silu(
    net,
    'time_embedding',
    linear(net, 'time_embedding.linear_1', embedded, sinusoidChannels, embedChannels),
  );
  return linear(net, 'time_embedding.linear_2', hidden, embedChannels, embedChannels);
}

/** [N, 1] float32 values → [N, channels] float32 [cos(v·f), sin(v·f)]: Timesteps with flip_sin_to_cos, freq_shift 0. */
function sinusoid(net: Net, scope: string, column: string, channels: number, key: string): string {
  const half = channels / 2;
  const frequencies = net.constant(key, 'float32', [1, half], () =>
    Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half)),
  );
  const phase = net.op(scope, 'Mul', [column, frequencies]);
  return net.op(scope, 'Concat', [net.op(scope, 'Cos', [phase]), net.op(scope, 'Sin', [phase])], { axis: 1 });
}

/**
 * SDXL's aug_emb: add_time_proj(time_ids.flatten()) reshaped to [B, 6·D], after text_embeds, then add_embedding
 * (Linear → SiLU → Linear) to the time embedding's width.
 */
function addedEmbedding(
  net: Net,
  input: { textEmbeds: string; timeIds: string; textEmbedsDim: number; timeEmbedDim: number },
  embedChannels: number,
): string {
  const scope = 'add_time_proj';
  const ids = net.op(scope, 'Reshape', [net.op(scope, 'Cast', [input.timeIds], { to: 1 }), net.int64([-1, 1])]);
  const projected = sinusoid(net, scope, ids, input.timeEmbedDim, 'add-time-frequencies');
  const perImage = net.op(scope, 'Reshape', [projected, net.int64([-1, TIME_IDS * input.timeEmbedDim])]);
  const timeEmbeds = net.op(scope, 'Cast', [perImage], { to: net.onnxFloat });
  const joined = net.op('add_embedding', 'Concat', [input.textEmbeds, timeEmbeds], { axis: -1 });
  const inputDim = input.textEmbedsDim + TIME_IDS * input.timeEmbedDim;
  const hidden = silu(net, 'add_embedding', linear(net, 'add_embedding.linear_1', joined, inputDim, embedChannels));
  return linear(net, 'add_embedding.linear_2', hidden, embedChannels, embedChannels);
}

interface BlockContext {
  groups: number;
  context: string;
  config: UnetConfig;
}

/**
 * Transformer2DModel with `layers` BasicTransformerBlocks (one for SD 1.x/2.x): GroupNorm, proj_in (1×1 conv for SD
 * 1.x, Linear with use_linear_projection), per block self-attention, cross-attention on the text and a GEGLU
 * feed-forward, then proj_out, and the residual around it all.
 */
function transformer2d(
  net: Net,
  scope: string,
  x: string,
  channels: number,
  heads: number,
  layers: number,
  block: BlockContext,
): string {
  const linearProjection = block.config.useLinearProjection;
  let h = groupNorm(net, `${scope}.norm`, x, channels, block.groups, TRANSFORMER_NORM_EPS);
  if (linearProjection) h = linear(net, `${scope}.proj_in`, toTokens(net, scope, h), channels, channels);
  else h = toTokens(net, scope, conv2d(net, `${scope}.proj_in`, h, channels, channels, { kernel: 1 }));

  for (let layer = 0; layer < layers; layer++)
    h = basicTransformerBlock(net, `${scope}.transformer_blocks.${layer}`, h, channels, heads, block);

  if (linearProjection) h = fromTokens(net, scope, linear(net, `${scope}.proj_out`, h, channels, channels), x);
  else h = conv2d(net, `${scope}.proj_out`, fromTokens(net, scope, h, x), channels, channels, { kernel: 1 });
  return net.op(scope, 'Add', [h, x]);
}

/** BasicTransformerBlock on tokens [B, S, C]: self-attention, cross-attention on the text, GEGLU, each residual. */
function basicTransformerBlock(
  net: Net,
  t: string,
  x: string,
  channels: number,
  heads: number,
  block: BlockContext,
): string {
  const attention = (name: string, input: string, kv: string, kvChannels: number) => {
    const q = linear(net, `${t}.${name}.to_q`, input, channels, channels, false);
    const k = linear(net, `${t}.${name}.to_k`, kv, kvChannels, channels, false);
    const v = linear(net, `${t}.${name}.to_v`, kv, kvChannels, channels, false);
    return linear(
      net,
      `${t}.${name}.to_out.0`,
      multiHeadAttention(net, `${t}.${name}`, q, k, v, channels, heads),
      channels,
      channels,
    );
  };
  const norm1 = layerNorm(net, `${t}.norm1`, x, channels, LAYER_NORM_EPS);
  let h = net.op(t, 'Add', [attention('attn1', norm1, norm1, channels), x]);
  const norm2 = layerNorm(net, `${t}.norm2`, h, channels, LAYER_NORM_EPS);
  h = net.op(t, 'Add', [attention('attn2', norm2, block.context, block.config.crossAttentionDim), h]);
  const norm3 = layerNorm(net, `${t}.norm3`, h, channels, LAYER_NORM_EPS);
  return net.op(t, 'Add', [geglu(net, `${t}.ff`, norm3, channels), h]);
}

/** FeedForward with GEGLU (mult 4): Linear(C, 8C) split in value and gate, value·GELU(gate), Linear(4C, C). */
function geglu(net: Net, scope: string, x: string, channels: number): string {
  const inner = channels * 4;
  const projected = linear(net, `${scope}.net.0.proj`, x, channels, inner * 2);
  const [value, gate] = [net.tmp(scope), net.tmp(scope)];
  net.g.node('Split', [projected, net.int64([inner, inner])], [value, gate], { axis: -1 });
  const gated = net.op(scope, 'Mul', [value, gelu(net, scope, gate)]);
  return linear(net, `${scope}.net.2`, gated, inner, channels);
}
