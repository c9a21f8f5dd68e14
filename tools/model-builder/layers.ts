// The building blocks of the architecture presets: a graph with parameters (counted, made lazily
// from a seeded stream) and the layers diffusers and transformers use, written as the ops that
// torch.onnx exports them to at opset 17 (Linear → MatMul + Add, GroupNorm → InstanceNormalization
// between reshapes, LayerNormalization, SiLU → Sigmoid · x, GELU → Erf), so that onnxruntime sees
// the graph shapes and fusion opportunities of a real export.
import { toFloat16Array } from '../../src/engines/diffusion/float16.ts';
import { uniformSource } from '../../src/engines/diffusion/random.ts';
import { type DataType, GraphBuilder, ONNX_TYPE } from './onnx.ts';

export type FloatType = 'float32' | 'float16';

/**
 * Uniform weights on [-√3·std, √3·std), which have the variance std² of N(0, std²) but cost one
 * xoshiro128** draw each (Box–Muller costs a log and a sine): the sd-turbo folder holds 1.3 billion.
 * The smallest non-zero magnitude is std·2⁻³¹·√3, far above float32's denormal range, so no weight
 * slows the CPU kernels down.
 */
export class WeightStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Streams of one seed with different `stream` numbers are unrelated. */
  constructor(seed: number, stream: number) {
    const uniform = uniformSource(seed);
    const word = (k: number) => (Math.floor(uniform() * 2 ** 32) ^ Math.imul(stream + k, 0x9e3779b9)) >>> 0;
    [this.s0, this.s1, this.s2, this.s3] = [word(1), word(2), word(3), word(4)];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** `count` values of mean `mean` and standard deviation `std`. */
  next(count: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(count);
    const k = (std * Math.sqrt(3)) / 2 ** 31;
    let { s0, s1, s2, s3 } = this;
    for (let i = 0; i < count; i++) {
      // xoshiro128** 1.1, as in src/engines/diffusion/random.ts, inlined for speed.
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      out[i] = mean + r * k; // r as a signed int32: uniform on [-2³¹, 2³¹)
    }
    Object.assign(this, { s0, s1, s2, s3 });
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export interface NetOptions {
  float: FloatType;
  /** Where weights come from; null builds the graph only (parameter counting: nothing is drawn). */
  weights: WeightStream | null;
  /** Mark every parameter for the external-data file. */
  external: boolean;
  /**
   * Attention without a mask as one com.microsoft MultiHeadAttention node instead of the unfused
   * MatMul/Softmax/MatMul chain of an export (docs/cpu-performance.md, "Fused attention").
   */
  fusedAttention?: boolean;
  /**
   * Linear layers whose scope this accepts become com.microsoft DynamicQuantizeMatMul with int8
   * weights (symmetric, one scale per output column) and the bias folded in: what onnxruntime's
   * dynamic quantisation makes of them. The float weights are drawn as before, so the quantised
   * model's weights are the float model's, rounded (docs/cpu-performance.md, "int8 linear layers").
   */
  int8Linear?: (scope: string) => boolean;
}

/** A graph under construction plus its parameter count; every layer helper below takes one. */
export class Net {
  readonly g: GraphBuilder;
  parameters = 0;
  private readonly constants = new Map<string, string>();
  private count = 0;

  constructor(
    name: string,
    readonly options: NetOptions,
  ) {
    this.g = new GraphBuilder(name);
  }

  get float(): FloatType {
    return this.options.float;
  }

  /** A trained weight: counted, drawn when the model is written, in the net's float type. */
  param(name: string, dims: number[], std: number, mean = 0): string {
    const count = dims.reduce((a, b) => a * b, 1);
    this.parameters += count;
    const { weights, float, external } = this.options;
    const data = () => {
      if (!weights) throw new Error(`${this.g.name}: built for counting only, no weights for ${name}`);
      const values = weights.next(count, std, mean);
      return float === 'float16' ? toFloat16Array(values) : values;
    };
    return this.g.initializer(name, float, dims, data, { external });
  }

  /** A fresh tensor name under `scope`. */
  tmp(scope: string): string {
    return `${scope}/t${this.count++}`;
  }

  /** One node with a fresh output name; returns it. */
  op(scope: string, op: string, inputs: readonly string[], attrs: Parameters<GraphBuilder['node']>[3] = {}): string {
    return this.g.node(op, inputs, [this.tmp(scope)], attrs);
  }

  /** A shared constant (not a parameter), made once per graph. */
  constant(key: string, type: DataType, dims: number[], values: () => Float32Array | BigInt64Array): string {
    const found = this.constants.get(key);
    if (found) return found;
    const raw = values();
    const data = type === 'float16' ? toFloat16Array(raw as Float32Array) : raw;
    const name = this.g.initializer(`const/${key}`, type, dims, data);
    this.constants.set(key, name);
    return name;
  }

  int64(values: readonly number[]): string {
    return this.constant(`i64[${values}]`, 'int64', [values.length], () => BigInt64Array.from(values, BigInt));
  }

  /** A scalar in the net's float type. */
  scalar(value: number): string {
    return this.constant(`${this.float}(${value})`, this.float, [], () => Float32Array.of(value));
  }

  /** `count` copies of `value` in the net's float type (InstanceNormalization's unit scale and zero bias). */
  filled(count: number, value: number): string {
    return this.constant(`${this.float}[${count}]=${value}`, this.float, [count], () =>
      new Float32Array(count).fill(value),
    );
  }

  get onnxFloat(): number {
    return ONNX_TYPE[this.float];
  }
}

/** nn.Linear as exported: x·Wᵀ (stored transposed, [in, out]) + b; weights ~ 1/√in so outputs stay O(1). */
export function linear(
  net: Net,
  scope: string,
  x: string,
  inFeatures: number,
  outFeatures: number,
  bias = true,
): string {
  if (net.float === 'float32' && net.options.int8Linear?.(scope))
    return int8Linear(net, scope, x, inFeatures, outFeatures, bias);
  const w = net.param(`${scope}.weight`, [inFeatures, outFeatures], 1 / Math.sqrt(inFeatures));
  const y = net.op(scope, 'MatMul', [x, w]);
  return bias ? net.op(scope, 'Add', [y, net.param(`${scope}.bias`, [outFeatures], 0.02)]) : y;
}

function int8Linear(
  net: Net,
  scope: string,
  x: string,
  inFeatures: number,
  outFeatures: number,
  bias: boolean,
): string {
  const { weights, external } = net.options;
  net.parameters += inFeatures * outFeatures;
  let quantised: { q: Int8Array; scale: Float32Array } | undefined;
  const quantise = () => {
    if (quantised) return quantised;
    if (!weights) throw new Error(`${net.g.name}: built for counting only, no weights for ${scope}`);
    const w = weights.next(inFeatures * outFeatures, 1 / Math.sqrt(inFeatures));
    const scale = new Float32Array(outFeatures);
    for (let i = 0; i < w.length; i++) scale[i % outFeatures] = Math.max(scale[i % outFeatures]!, Math.abs(w[i]!));
    for (let j = 0; j < outFeatures; j++) scale[j] = scale[j]! / 127 || 1;
    const q = Int8Array.from(w, (value, i) => Math.round(value / scale[i % outFeatures]!));
    quantised = { q, scale };
    return quantised;
  };
  const q = net.g.initializer(`${scope}.weight_int8`, 'int8', [inFeatures, outFeatures], () => quantise().q, {
    external,
  });
  const scale = net.g.initializer(`${scope}.weight_scale`, 'float32', [outFeatures], () => quantise().scale);
  const b = bias ? [net.param(`${scope}.bias`, [outFeatures], 0.02)] : [];
  return net.g.node(
    'DynamicQuantizeMatMul',
    [x, q, scale, ...(b.length ? ['', ...b] : [])],
    [net.tmp(scope)],
    {},
    {
      domain: 'com.microsoft',
    },
  );
}

export function conv2d(
  net: Net,
  scope: string,
  x: string,
  inChannels: number,
  outChannels: number,
  options: { kernel: number; stride?: number; pads?: [number, number, number, number]; bias?: boolean },
): string {
  const { kernel, stride = 1, bias = true } = options;
  const pad = (kernel - 1) / 2;
  const w = net.param(
    `${scope}.weight`,
    [outChannels, inChannels, kernel, kernel],
    1 / Math.sqrt(inChannels * kernel * kernel),
  );
  const b = bias ? [net.param(`${scope}.bias`, [outChannels], 0.02)] : [];
  return net.op(scope, 'Conv', [x, w, ...b], {
    kernel_shape: [kernel, kernel],
    strides: [stride, stride],
    pads: options.pads ?? [pad, pad, pad, pad],
    dilations: [1, 1],
    group: 1,
  });
}

/** nn.GroupNorm as torch exports it at opset 17: normalise [B, G, -1] per group, then the per-channel affine. */
export function groupNorm(net: Net, scope: string, x: string, channels: number, groups: number, eps: number): string {
  const grouped = net.op(scope, 'Reshape', [x, net.int64([0, groups, -1])]);
  const normed = net.op(scope, 'InstanceNormalization', [grouped, net.filled(groups, 1), net.filled(groups, 0)], {
    epsilon: { float: eps },
  });
  const shaped = net.op(scope, 'Reshape', [normed, net.op(scope, 'Shape', [x])]);
  const gamma = net.param(`${scope}.weight`, [channels, 1, 1], 0.05, 1);
  const beta = net.param(`${scope}.bias`, [channels, 1, 1], 0.05);
  return net.op(scope, 'Add', [net.op(scope, 'Mul', [shaped, gamma]), beta]);
}

export function layerNorm(net: Net, scope: string, x: string, features: number, eps: number): string {
  const gamma = net.param(`${scope}.weight`, [features], 0.05, 1);
  const beta = net.param(`${scope}.bias`, [features], 0.05);
  return net.op(scope, 'LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: { float: eps } });
}

export function silu(net: Net, scope: string, x: string): string {
  return net.op(scope, 'Mul', [x, net.op(scope, 'Sigmoid', [x])]);
}

/** Exact (erf) GELU: ½·x·(1 + erf(x/√2)). */
export function gelu(net: Net, scope: string, x: string): string {
  const erf = net.op(scope, 'Erf', [net.op(scope, 'Div', [x, net.scalar(Math.SQRT2)])]);
  return net.op(scope, 'Mul', [net.op(scope, 'Mul', [x, net.op(scope, 'Add', [erf, net.scalar(1)])]), net.scalar(0.5)]);
}

/** CLIP's quick_gelu: x·σ(1.702·x). */
export function quickGelu(net: Net, scope: string, x: string): string {
  return net.op(scope, 'Mul', [x, net.op(scope, 'Sigmoid', [net.op(scope, 'Mul', [x, net.scalar(1.702)])])]);
}

/**
 * Multi-head scaled dot-product attention of q [B, S, C] over k, v [B, T, C] (already projected):
 * heads split as [B, H, S, C/H], softmax(q·kᵀ/√d + mask)·v, heads merged back to [B, S, C].
 */
export function multiHeadAttention(
  net: Net,
  scope: string,
  q: string,
  k: string,
  v: string,
  channels: number,
  heads: number,
  mask?: string,
): string {
  const headDim = channels / heads;
  if (!Number.isInteger(headDim)) throw new Error(`${scope}: ${channels} channels do not split into ${heads} heads`);
  // Its default scale is 1/√headDim, as below; the output is already [B, S, C].
  if (net.options.fusedAttention && !mask)
    return net.g.node(
      'MultiHeadAttention',
      [q, k, v],
      [net.tmp(scope)],
      { num_heads: heads },
      { domain: 'com.microsoft' },
    );
  const split = net.int64([0, 0, heads, headDim]);
  const qh = net.op(scope, 'Transpose', [net.op(scope, 'Reshape', [q, split])], { perm: [0, 2, 1, 3] });
  const kt = net.op(scope, 'Transpose', [net.op(scope, 'Reshape', [k, split])], { perm: [0, 2, 3, 1] });
  const vh = net.op(scope, 'Transpose', [net.op(scope, 'Reshape', [v, split])], { perm: [0, 2, 1, 3] });
  let scores = net.op(scope, 'MatMul', [net.op(scope, 'Mul', [qh, net.scalar(1 / Math.sqrt(headDim))]), kt]);
  if (mask) scores = net.op(scope, 'Add', [scores, mask]);
  const probs = net.op(scope, 'Softmax', [scores], { axis: -1 });
  const merged = net.op(scope, 'Transpose', [net.op(scope, 'MatMul', [probs, vh])], { perm: [0, 2, 1, 3] });
  return net.op(scope, 'Reshape', [merged, net.int64([0, 0, channels])]);
}

/** [B, C, H, W] → [B, H·W, C], the token layout of the attention blocks. */
export function toTokens(net: Net, scope: string, x: string): string {
  return net.op(scope, 'Transpose', [net.op(scope, 'Reshape', [x, net.int64([0, 0, -1])])], { perm: [0, 2, 1] });
}

/** [B, H·W, C] → the shape of `like` ([B, C, H, W]). */
export function fromTokens(net: Net, scope: string, tokens: string, like: string): string {
  return net.op(scope, 'Reshape', [
    net.op(scope, 'Transpose', [tokens], { perm: [0, 2, 1] }),
    net.op(scope, 'Shape', [like]),
  ]);
}

/** Nearest ×2 (diffusers Upsample2D's F.interpolate, exported as Resize asymmetric/floor). */
export function upsampleNearest2x(net: Net, scope: string, x: string): string {
  const scales = net.constant('resize-2x', 'float32', [4], () => Float32Array.of(1, 1, 2, 2));
  return net.op(scope, 'Resize', [x, '', scales], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}

/**
 * diffusers ResnetBlock2D: GN → SiLU → conv3×3 (+ time embedding projection) → GN → SiLU → conv3×3,
 * plus the input through a 1×1 conv_shortcut when the width changes. `temb` is the UNet's time
 * embedding (the VAE's resnets have none).
 */
export function resnetBlock(
  net: Net,
  scope: string,
  x: string,
  options: {
    inChannels: number;
    outChannels: number;
    groups: number;
    eps: number;
    temb?: { input: string; channels: number };
  },
): string {
  const { inChannels, outChannels, groups, eps, temb } = options;
  let h = silu(net, scope, groupNorm(net, `${scope}.norm1`, x, inChannels, groups, eps));
  h = conv2d(net, `${scope}.conv1`, h, inChannels, outChannels, { kernel: 3 });
  if (temb) {
    const projected = linear(net, `${scope}.time_emb_proj`, silu(net, scope, temb.input), temb.channels, outChannels);
    h = net.op(scope, 'Add', [h, net.op(scope, 'Unsqueeze', [projected, net.int64([2, 3])])]);
  }
  h = silu(net, scope, groupNorm(net, `${scope}.norm2`, h, outChannels, groups, eps));
  h = conv2d(net, `${scope}.conv2`, h, outChannels, outChannels, { kernel: 3 });
  const shortcut =
    inChannels === outChannels ? x : conv2d(net, `${scope}.conv_shortcut`, x, inChannels, outChannels, { kernel: 1 });
  return net.op(scope, 'Add', [shortcut, h]);
}
