// fp32 ↔ fp16 by hand, and feeds shaped by a part's contract.
// Node 20 has no Float16Array, and onnxruntime-node takes and returns float16 tensors as Uint16Array
// bits (onnx-diffusion.md §3.1). Feeds are built from what the session declared (dtype and rank),
// never from what an exporter usually writes (§1.2, §6.1).
import ort from 'onnxruntime-node';

export type FloatType = 'float32' | 'float16';
export type IdsType = 'int32' | 'int64';
export type TimestepType = 'float32' | 'float16' | 'int64';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits nearest to `value`: round half to even, overflow to ±Infinity, NaN kept NaN. */
export function toFloat16Bits(value: number): number {
  f32[0] = value; // first to float32 (itself round-to-nearest-even), as torch's .half() of an fp32 tensor
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: below 2^-25 (half the smallest subnormal) everything rounds to ±0.
    if (e < -10) return sign;
    mantissa |= 0x800000; // the implicit leading bit becomes explicit
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let bits = mantissa >>> shift;
    if (rest > half || (rest === half && (bits & 1) === 1)) bits++;
    return sign | bits; // a carry into the exponent field gives the smallest normal, correctly
  }
  let bits = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to Infinity (65520 → inf).
  if (rest > 0x1000 || (rest === 0x1000 && (bits & 1) === 1)) bits++;
  return sign | bits;
}

export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

export function toFloat16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]!);
  return out;
}

export function fromFloat16Array(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromFloat16Bits(bits[i]!);
  return out;
}

/** A float tensor of the declared dtype from float32 values (fp16 inputs get converted bits). */
export function floatTensor(type: FloatType, values: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', toFloat16Array(values), dims) : new ort.Tensor('float32', values, dims);
}

/** Any float output back as float32 values, whichever dtype the model produced. */
export function tensorToFloat32(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return fromFloat16Array(tensor.data as Uint16Array);
  throw new TypeError(`expected a float tensor, got ${tensor.type}`);
}

/** Token ids as the text encoder declared them: int32 (diffusers' script, optimum ≤ 1.23) or int64. */
export function idsTensor(type: IdsType, ids: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(ids), dims);
  const data = new BigInt64Array(ids.length);
  for (let i = 0; i < ids.length; i++) data[i] = BigInt(ids[i]!);
  return new ort.Tensor('int64', data, dims);
}

export interface TimestepShape {
  type: TimestepType;
  /** 0: a scalar (optimum ≥ 1.24); 1: a vector ([1], [steps] or [batch]). */
  rank: 0 | 1;
  /** For rank 1: a fixed length, or 'batch' when the dim is the sample's batch dim; else 1 (the UNet broadcasts it). */
  length: number | 'batch' | 'one';
}

/**
 * The timestep feed. An int64 timestep is rounded: Euler's linspace schedules give fractional
 * timesteps that int64-timestep exports (optimum 1.14–1.23, sd-turbo-ort-web) cannot carry.
 */
export function timestepTensor(shape: TimestepShape, t: number, batch: number): ort.Tensor {
  const count = shape.rank === 0 ? 1 : shape.length === 'batch' ? batch : shape.length === 'one' ? 1 : shape.length;
  const dims = shape.rank === 0 ? [] : [count];
  if (shape.type === 'int64') return new ort.Tensor('int64', new BigInt64Array(count).fill(BigInt(Math.round(t))), dims);
  return floatTensor(shape.type, new Float32Array(count).fill(t), dims);
}
