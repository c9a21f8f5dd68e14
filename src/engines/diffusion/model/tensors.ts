// Feeds shaped by a part's contract (fp16 conversion lives in ../float16.ts).
// Node 20 has no Float16Array, and onnxruntime-node takes and returns float16 tensors as Uint16Array
// bits (docs/diffusion.md, "onnxruntime-node"). Feeds are built from what the session declared (dtype and rank),
// never from what an exporter usually writes (docs/diffusion.md, "Exporter generations").
import ort from 'onnxruntime-node';

import { fromFloat16Array, toFloat16Array } from '../float16.ts';

export { fromFloat16Array, fromFloat16Bits, toFloat16Array, toFloat16Bits } from '../float16.ts';

export type FloatType = 'float32' | 'float16';
export type IdsType = 'int32' | 'int64';
export type TimestepType = 'float32' | 'float16' | 'int64';

/** A float tensor of the declared dtype from float32 values (fp16 inputs get converted bits). */
export function floatTensor(type: FloatType, values: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16'
    ? new ort.Tensor('float16', toFloat16Array(values), dims)
    : new ort.Tensor('float32', values, dims);
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
  if (shape.type === 'int64')
    return new ort.Tensor('int64', new BigInt64Array(count).fill(BigInt(Math.round(t))), dims);
  return floatTensor(shape.type, new Float32Array(count).fill(t), dims);
}
