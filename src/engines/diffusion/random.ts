/**
 * Seeded randomness for diffusion: initial latents and the noise of stochastic schedulers.
 *
 * This is not torch's generator (mt19937 plus torch's own normal transform), so the same seed gives
 * different latents, and different pictures, than diffusers. What matters is that easel is
 * deterministic: the same seed, model and parameters give the same latents on every machine,
 * because the generator is uint32 integer arithmetic and the normal transform uses IEEE double
 * operations plus Math.log/sin/cos, which V8 implements itself (an fdlibm port) on every platform.
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c),
 * 128 bits of state, seeded splitmix-style so that nearby seeds give unrelated streams.
 * Normals: Box–Muller on 53-bit uniforms, both values of each pair used.
 */

/** A generator of uint32 values from a raw 128-bit state (four uint32 words, not all zero). */
export function xoshiro128ss(state: readonly [number, number, number, number]): () => number {
  let [s0, s1, s2, s3] = state.map((word) => word >>> 0) as [number, number, number, number];
  if ((s0 | s1 | s2 | s3) === 0) throw new RangeError('xoshiro128** state must not be all zero');
  return () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const GOLDEN = 0x9e3779b9;

/** MurmurHash3's 32-bit finaliser: a bijection on uint32 in which every input bit moves every output bit. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The 128-bit state for a seed, splitmix-style (a golden-ratio Weyl sequence through a mixer), so
 * that nearby seeds give unrelated streams. Any safe integer works: the low 32 bits make the first
 * two words and the high bits the last two, so distinct seeds give distinct states, never all zero.
 */
function seedState(seed: number): [number, number, number, number] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  const word = (base: number, k: number) => fmix32((base + Math.imul(k, GOLDEN)) >>> 0);
  return [word(low, 1), word(low, 2), word(high, 3), word(high, 4)];
}

/** Uniform doubles in [0, 1) with 53 random bits, from a seed. */
export function uniformSource(seed: number): () => number {
  const next = xoshiro128ss(seedState(seed));
  return () => ((next() >>> 5) * 2 ** 26 + (next() >>> 6)) / 2 ** 53;
}

/** Standard-normal numbers from a seed: the `rng` the schedulers' `step` takes. */
export function normalSource(seed: number): () => number {
  const uniform = uniformSource(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    // 1 − u lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
}

/** `count` standard-normal values as float32, e.g. the initial latents of one image. */
export function randn(count: number, seed: number): Float32Array {
  const normal = normalSource(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = normal();
  return out;
}
