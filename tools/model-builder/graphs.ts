// The four tiny graphs of a Stable Diffusion ONNX folder. They are not diffusion models: each keeps
// the exact I/O contract of the real export (names, dtypes, ranks, dim names; docs/diffusion.md, "Tensor names, dtypes
// and shapes")
// with a few cheap ops chosen so that every output depends on every input, which is what an engine
// test needs to see that it feeds the right tensor to the right place.
import { toFloat16Array } from '../../src/engines/diffusion/float16.ts';
import { type DataType, type Dim, GraphBuilder, ONNX_TYPE } from './onnx.ts';

export type IdsType = 'int32' | 'int64';
/**
 * float-scalar: optimum ≥ 1.24 (shape []); float-vector: diffusers' script ([batch]); int64-vector: optimum ≤ 1.23,
 * sd-turbo-ort-web ([steps]).
 */
export type TimestepKind = 'float-scalar' | 'float-vector' | 'int64-vector';

/** Shared by the part builders: the weight stream, the float type of the I/O, where weights go. */
export interface PartContext {
  normal: () => number;
  float: DataType;
  hiddenSize: number;
  /** Mark initializers as external (written to `model.onnx_data` by the caller). */
  external?: boolean;
}

/** Random weights N(0, scale²), stored in the part's float type. */
function weight(g: GraphBuilder, ctx: PartContext, name: string, dims: number[], scale: number): string {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = ctx.normal() * scale;
  const data = ctx.float === 'float16' ? toFloat16Array(values) : values;
  return g.initializer(name, ctx.float, dims, data, { external: ctx.external });
}

function int64s(g: GraphBuilder, name: string, values: number[]): string {
  return g.initializer(name, 'int64', [values.length], BigInt64Array.from(values, BigInt));
}

/** 3×3 (or k×k) convolution with bias, "same" padding, weights scaled by 1/√fan-in so outputs stay O(1). */
function conv(
  g: GraphBuilder,
  ctx: PartContext,
  name: string,
  input: string,
  inCh: number,
  outCh: number,
  kernel: number,
): string {
  const w = weight(g, ctx, `${name}.weight`, [outCh, inCh, kernel, kernel], 1 / Math.sqrt(inCh * kernel * kernel));
  const b = weight(g, ctx, `${name}.bias`, [outCh], 0.1);
  const pad = (kernel - 1) / 2;
  return g.node('Conv', [input, w, b], [name], { kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad] });
}

/**
 * CLIPTextModel stand-in: input_ids [batch_size, sequence_length] → last_hidden_state
 * [batch_size, sequence_length, D] = tanh((token + position embedding)·W), pooler_output [batch_size, D]
 * (the mean over positions; real CLIP takes the EOS position, which changes nothing for the contract).
 */
export function textEncoderGraph(
  ctx: PartContext,
  options: { ids: IdsType; vocabSize: number; maxLength: number },
): GraphBuilder {
  const D = ctx.hiddenSize;
  const g = new GraphBuilder('text_encoder');
  const ids = g.input('input_ids', options.ids, ['batch_size', 'sequence_length']);
  const tokens = weight(g, ctx, 'token_embedding', [options.vocabSize, D], 1);
  const positions = weight(g, ctx, 'position_embedding', [options.maxLength, D], 0.3);
  const proj = weight(g, ctx, 'projection', [D, D], 1 / Math.sqrt(D));
  const embedded = g.node('Gather', [tokens, ids], ['token_embeds'], { axis: 0 });
  const summed = g.node('Add', [embedded, positions], ['embeds']);
  const projected = g.node('MatMul', [summed, proj], ['projected']);
  const hidden = g.node('Tanh', [projected], ['last_hidden_state']);
  g.node('ReduceMean', [hidden], ['pooler_output'], { axes: [1], keepdims: 0 });
  g.output('last_hidden_state', ctx.float, ['batch_size', 'sequence_length', D]);
  g.output('pooler_output', ctx.float, ['batch_size', D]);
  return g;
}

/**
 * The SDXL encoders as optimum exports them with output_hidden_states (docs/diffusion.md, "SDXL conditioning"):
 * `layers` stacked
 * tanh layers, hidden_states.0 (the embeddings) … hidden_states.L, and last_hidden_state (a copy of
 * hidden_states.L; real CLIP adds a final layer norm). Without `projectionDim` it is CLIPTextModel
 * (outputs last_hidden_state, pooler_output, hidden_states.*); with it CLIPTextModelWithProjection
 * (text_embeds [batch_size, P] = pooled·W, last_hidden_state, hidden_states.*), in optimum's output order.
 */
export function textEncoderWithHiddenStatesGraph(
  ctx: PartContext,
  options: { ids: IdsType; vocabSize: number; maxLength: number; layers: number; projectionDim?: number },
): GraphBuilder {
  const D = ctx.hiddenSize;
  const g = new GraphBuilder(options.projectionDim === undefined ? 'text_encoder' : 'text_encoder_2');
  const ids = g.input('input_ids', options.ids, ['batch_size', 'sequence_length']);
  const tokens = weight(g, ctx, 'token_embedding', [options.vocabSize, D], 1);
  const positions = weight(g, ctx, 'position_embedding', [options.maxLength, D], 0.3);
  const embedded = g.node('Gather', [tokens, ids], ['token_embeds'], { axis: 0 });
  let hidden = g.node('Add', [embedded, positions], ['hidden_states.0']);
  for (let i = 1; i <= options.layers; i++) {
    const proj = weight(g, ctx, `layers.${i}.projection`, [D, D], 1 / Math.sqrt(D));
    const projected = g.node('MatMul', [hidden, proj], [`layers.${i}.projected`]);
    hidden = g.node('Tanh', [projected], [`hidden_states.${i}`]);
  }
  g.node('Identity', [hidden], ['last_hidden_state']);
  const hiddenDims = ['batch_size', 'sequence_length', D];
  if (options.projectionDim === undefined) {
    g.node('ReduceMean', [hidden], ['pooler_output'], { axes: [1], keepdims: 0 });
    g.output('last_hidden_state', ctx.float, hiddenDims);
    g.output('pooler_output', ctx.float, ['batch_size', D]);
  } else {
    const pooled = g.node('ReduceMean', [hidden], ['pooled'], { axes: [1], keepdims: 0 });
    const projection = weight(g, ctx, 'text_projection', [D, options.projectionDim], 1 / Math.sqrt(D));
    g.node('MatMul', [pooled, projection], ['text_embeds']);
    g.output('text_embeds', ctx.float, ['batch_size', options.projectionDim]);
    g.output('last_hidden_state', ctx.float, hiddenDims);
  }
  for (let i = 0; i <= options.layers; i++) g.output(`hidden_states.${i}`, ctx.float, hiddenDims);
  return g;
}

export interface UnetGraphOptions {
  inChannels: number;
  timestep: TimestepKind;
  symbolicChannels: boolean;
  /** SDXL (addition_embed_type 'text_time'): inputs text_embeds [batch_size, P] and time_ids [batch_size, 6]. */
  textEmbedsDim?: number;
  /** LCM: input timestep_cond [batch_size, time_cond_proj_dim], the guidance-scale embedding. */
  timestepCondDim?: number;
}

/**
 * UNet stand-in: out_sample = Conv3×3(sample) + (mean over tokens of encoder_hidden_states)·W
 * + sin(timestep·f), the last two broadcast over the image. A [steps] timestep broadcasts over the
 * batch when steps is 1 or equals the batch, as the real UNet's time embedding does. SDXL's added
 * conditioning adds text_embeds·W + sin(time_ids·F), LCM's adds timestep_cond·W, each per channel.
 */
export function unetGraph(ctx: PartContext, options: UnetGraphOptions): GraphBuilder {
  const D = ctx.hiddenSize;
  const g = new GraphBuilder('unet');
  const channels: Dim = options.symbolicChannels ? 'num_channels' : options.inChannels;
  const sample = g.input('sample', ctx.float, ['batch_size', channels, 'height', 'width']);
  const timestepType = options.timestep === 'int64-vector' ? 'int64' : ctx.float;
  const timestep = g.input('timestep', timestepType, options.timestep === 'float-scalar' ? [] : ['steps']);
  const context = g.input('encoder_hidden_states', ctx.float, ['batch_size', 'sequence_length', D]);

  const image = conv(g, ctx, 'conv_in', sample, options.inChannels, 4, 3);

  const pooled = g.node('ReduceMean', [context], ['context_mean'], { axes: [1], keepdims: 0 });
  const contextProj = weight(g, ctx, 'context_proj', [D, 4], 1 / Math.sqrt(D));
  const perChannel = g.node('MatMul', [pooled, contextProj], ['context_channels']);
  const spatialAxes = int64s(g, 'spatial_axes', [2, 3]);
  const contextTerm = g.node('Unsqueeze', [perChannel, spatialAxes], ['context_term']);

  // Cast even a float timestep: a no-op there, and one graph shape for all three kinds.
  const t = g.node('Cast', [timestep], ['timestep_float'], { to: ONNX_TYPE[ctx.float] });
  const tColumn = g.node('Reshape', [t, int64s(g, 'timestep_shape', [-1, 1, 1, 1])], ['timestep_column']);
  const frequencies = weight(g, ctx, 'time_frequencies', [1, 4, 1, 1], 0.01);
  const phase = g.node('Mul', [tColumn, frequencies], ['time_phase']);
  const timeTerm = g.node('Sin', [phase], ['time_term']);

  // The added conditioning, each input [batch_size, size] → a per-channel [batch, 4, 1, 1] term,
  // in optimum's input order (UNetOnnxConfig.inputs); none for SD 1.x/2.x.
  const extras: string[] = [];
  const addedInput = (name: string, size: number, scale: number, wrap?: 'Sin') => {
    const input = g.input(name, ctx.float, ['batch_size', size]);
    const w = weight(g, ctx, `${name}_proj`, [size, 4], scale);
    const mixed = g.node('MatMul', [input, w], [`${name}_channels`]);
    const bounded = wrap ? g.node(wrap, [mixed], [`${name}_sin`]) : mixed;
    extras.push(g.node('Unsqueeze', [bounded, spatialAxes], [`${name}_term`]));
  };
  if (options.textEmbedsDim !== undefined) {
    addedInput('text_embeds', options.textEmbedsDim, 1 / Math.sqrt(options.textEmbedsDim));
    // time_ids are pixel sizes (~1024), so small frequencies and a sine keep the term O(1).
    addedInput('time_ids', 6, 1e-3, 'Sin');
  }
  if (options.timestepCondDim !== undefined)
    addedInput('timestep_cond', options.timestepCondDim, 1 / Math.sqrt(options.timestepCondDim));

  const withContext = g.node('Add', [image, contextTerm], ['with_context']);
  let sum = g.node('Add', [withContext, timeTerm], [extras.length > 0 ? 'with_time' : 'out_sample']);
  extras.forEach((term, i) => {
    sum = g.node('Add', [sum, term], [i === extras.length - 1 ? 'out_sample' : `with_extra_${i}`]);
  });
  g.output('out_sample', ctx.float, ['batch_size', 4, 'height', 'width']);
  return g;
}

/**
 * VAE decoder stand-in: latent_sample → tanh(Conv3×3(nearest ×8 upsampling)), so the image is exactly 8× and in (-1,
 * 1).
 */
export function vaeDecoderGraph(ctx: PartContext, options: { symbolicChannels: boolean }): GraphBuilder {
  const g = new GraphBuilder('vae_decoder');
  const channels: Dim = options.symbolicChannels ? 'num_channels_latent' : 4;
  const latent = g.input('latent_sample', ctx.float, ['batch_size', channels, 'height_latent', 'width_latent']);
  // Resize's scales input is float32 whatever the data type.
  const scales = g.initializer('upsample_scales', 'float32', [4], Float32Array.of(1, 1, 8, 8));
  const upsampled = g.node('Resize', [latent, '', scales], ['upsampled'], { mode: 'nearest' });
  const mixed = conv(g, ctx, 'conv_out', upsampled, 4, 3, 3);
  g.node('Tanh', [mixed], ['sample']);
  g.output('sample', ctx.float, ['batch_size', 3, 'height', 'width']);
  return g;
}

/**
 * VAE encoder stand-in: sample → Conv3×3(8×8 average pooling). With `latentParameters` it has the
 * newer optimum output (8 channels, mean ‖ logvar; docs/diffusion.md, "Exporter generations"), else the older sampled
 * `latent_sample`.
 */
export function vaeEncoderGraph(ctx: PartContext, options: { latentParameters: boolean }): GraphBuilder {
  const g = new GraphBuilder('vae_encoder');
  const image = g.input('sample', ctx.float, ['batch_size', 3, 'height', 'width']);
  const pooled = g.node('AveragePool', [image], ['pooled'], { kernel_shape: [8, 8], strides: [8, 8] });
  const [name, channels] = options.latentParameters ? ['latent_parameters', 8] : ['latent_sample', 4];
  const out = conv(g, ctx, 'conv_out', pooled, 3, channels, 3);
  g.node('Identity', [out], [name]);
  g.output(name, ctx.float, ['batch_size', channels, 'height_latent', 'width_latent']);
  return g;
}
