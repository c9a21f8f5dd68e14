/**
 * What every scheduler shares: the protocol, the β/ᾱ tables and the timestep spacings.
 *
 * Precision, once for all schedulers. diffusers builds its tables in float32 torch (CPU), and a UNet
 * sees those float32 values, so the tables here are float32 too and built op by op as torch does
 * (Math.fround after each operation): torch.linspace's arithmetic, squaring, 1 − β, and cumprod
 * accumulated in float64 and rounded per element (torch's CPU kernel accumulates in
 * at::acc_type<float> = double). Checked against torch 2.13 on an x86-64 CPU: the β and ᾱ tables
 * of both schedules are bit-identical; σ differs by one ulp in 190 of 1000 entries because torch's
 * vectorised float32 sqrt is not always correctly rounded. Per-step coefficients are computed in
 * float64 from the float32 table entries, and element-wise arithmetic is float64 rounded once to
 * float32 on store, which is within a few ulp of torch's float32 op-by-op evaluation.
 */
import type { SchedulerConfig } from './config.ts';

export type { BetaSchedule, PredictionType, SchedulerClassName, SchedulerConfig, TimestepSpacing } from './config.ts';
export { parseSchedulerConfig, SCHEDULER_CLASS_NAMES, SchedulerConfigError } from './config.ts';

/** A source of standard-normal numbers, e.g. `normalSource(seed)` from ../random.ts. Never Math.random. */
export type NormalSource = () => number;

export interface StepResult {
  /** x_{t-1}: the next sample to feed the model (or the final latents after the last step). */
  prevSample: Float32Array;
  /** The current estimate of the clean sample x0 (LCM: its `denoised`), for previews. */
  predOriginalSample?: Float32Array;
}

export interface SetTimestepsOptions {
  /** LCM only: img2img strength, shortening the distillation schedule (diffusers `strength`). */
  strength?: number;
  /** LCM only: overrides config.original_inference_steps. */
  originalInferenceSteps?: number;
  /** LCM only: a custom descending schedule instead of `numInferenceSteps`. */
  timesteps?: readonly number[];
}

/**
 * The diffusers scheduler protocol: set the timesteps, scale each model input, step. A scheduler
 * knows nothing of models; the pipeline owns the loop and the noise generator.
 *
 * Typical loop: `setTimesteps(n)`; latents = noise × `initNoiseSigma`; for each `t` of `timesteps`:
 * input = `scaleModelInput(latents, t)`, output = model(input, t), latents = `step(output, t, latents,
 * rng).prevSample`.
 */
export interface Scheduler {
  readonly config: SchedulerConfig;
  /**
   * Timesteps to run, in order. Fractional for Euler with linspace spacing (and 0.25·ln σ for
   * continuous timesteps), integers otherwise; the pipeline casts them to the UNet's timestep dtype.
   */
  readonly timesteps: readonly number[];
  /** Standard deviation to multiply the initial N(0,1) latents by. */
  readonly initNoiseSigma: number;
  readonly numInferenceSteps: number | null;
  /** Fill `timesteps` (and σs where the scheduler has them) for a run of `numInferenceSteps` steps. */
  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void;
  /** img2img: the run starts at `timesteps[index]` (diffusers `set_begin_index`). */
  setBeginIndex(index: number): void;
  /** The model input for this timestep. May return `sample` itself when no scaling applies: do not mutate it. */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** One denoising step from `timestep`. Stochastic schedulers draw from `rng` and throw without one. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: NormalSource): StepResult;
  /** Forward diffusion of clean latents to the noise level of `timestep` (img2img, inpainting). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
}

/** Misuse of a scheduler at run time (no setTimesteps, unknown timestep, missing noise source). */
export class SchedulerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerError';
  }
}

const f32 = Math.fround;

/**
 * torch.linspace(start, end, steps, dtype=torch.float32) on CPU (aten RangeFactoriesKernel.cpp):
 * the first half counts up from start, the second half down from end, each element
 * `start + step·i` rounded once, as the kernel's fused multiply-add does. This reproduces the
 * linear and scaled_linear β tables of torch 2.13 (x86-64 CPU) bit for bit.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const [a, b] = [f32(start), f32(end)];
  const step = f32(f32(b - a) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    // step·i is exact in float64 (24-bit × ≤31-bit), so one rounding to float32 matches the fma.
    out[i] = i < halfway ? f32(a + step * i) : f32(b - step * (steps - i - 1));
  }
  return out;
}

/** The β table of `__init__` in every scheduling_*.py used here, including the zero-SNR rescale. */
export function betasFor(config: SchedulerConfig): Float32Array {
  const T = config.num_train_timesteps;
  let betas: Float32Array;
  if (config.trained_betas !== null) betas = Float32Array.from(config.trained_betas);
  else if (config.beta_schedule === 'linear') betas = torchLinspaceF32(config.beta_start, config.beta_end, T);
  else {
    // "scaled_linear": linspace of √β in float32, then squared (specific to latent diffusion).
    const roots = torchLinspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T);
    betas = roots.map((r) => f32(r * r));
  }
  return config.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** ᾱ_t = ∏_{i≤t} (1 − β_i): torch.cumprod on CPU (float64 accumulator, float32 results). */
export function alphasCumprodFor(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= f32(1 - (betas[i] as number));
    out[i] = product;
  }
  return out;
}

/**
 * "Common Diffusion Noise Schedules and Sample Steps are Flawed" (arXiv 2305.08891), Algorithm 1,
 * as scheduling_ddim.py `rescale_zero_terminal_snr`: shift √ᾱ so its last value is 0, rescale so
 * its first is unchanged, and convert back to βs. The last β becomes 1. β = 1 − ᾱ_t/ᾱ_{t−1}
 * amplifies rounding: against torch (whose sqrt rounds differently) early βs differ by up to
 * 2.5e-4 relative, while ᾱ stays within 4e-6.
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const roots = alphasCumprodFor(betas).map((a) => f32(Math.sqrt(a)));
  const first = roots[0] as number;
  const last = roots[roots.length - 1] as number;
  const scale = f32(first / f32(first - last));
  const alphaBar = roots.map((r) => f32(f32(f32(r - last) * scale) ** 2));
  return alphaBar.map((a, i) => f32(1 - (i === 0 ? a : f32(a / (alphaBar[i - 1] as number)))));
}

/** numpy.round: halves go to the even neighbour (np.linspace(0, 999, 5).round() gives 500, not 499). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.linspace(start, stop, num) in float64: `i·step + start`, with the last value exactly stop. */
export function numpyLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/**
 * The three spacings of Table 2 of arXiv 2305.08891, as the schedulers' `set_timesteps` compute
 * them (descending). `linspace` stays fractional for Euler (`float32`) and is rounded by DDIM.
 *
 * `trailing` always gives exactly `n` values. numpy's `arange(T, 0, -T/n)` makes one more for a few
 * n (61, 103, 121, … at T=1000) because T/(T/n) rounds above n, which adds a timestep of −1 in
 * diffusers; easel does not reproduce that.
 */
export function spacedTimesteps(config: SchedulerConfig, n: number, linspace: 'float32' | 'rounded'): number[] {
  const T = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case 'linspace': {
      const values = numpyLinspace(0, T - 1, n).reverse();
      return values.map((v) => (linspace === 'float32' ? f32(v) : roundHalfEven(v)));
    }
    case 'leading': {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + config.steps_offset);
    }
    case 'trailing': {
      // numpy's arange fills start + i·delta with delta = (start + step) − start.
      const delta = T + -T / n - T;
      return Array.from({ length: n }, (_, i) => roundHalfEven(T + i * delta) - 1);
    }
  }
}

/** diffusers `get_timesteps` for img2img: how many leading timesteps to skip for `strength`. */
export function img2imgStartIndex(numInferenceSteps: number, strength: number): number {
  const initTimestep = Math.min(Math.trunc(numInferenceSteps * strength), numInferenceSteps);
  return Math.max(numInferenceSteps - initTimestep, 0);
}

/** Checks shared by every `setTimesteps`. */
export function checkStepCount(config: SchedulerConfig, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > config.num_train_timesteps) {
    throw new SchedulerError(`numInferenceSteps must be an integer from 1 to ${config.num_train_timesteps}, got ${n}`);
  }
}

export function checkSameLength(modelOutput: Float32Array, sample: Float32Array): void {
  if (modelOutput.length !== sample.length) {
    throw new SchedulerError(`model output has ${modelOutput.length} values but the sample has ${sample.length}`);
  }
}

/** Fill a new array with draws from `rng`, or explain which scheduler needed one. */
export function drawNoise(length: number, rng: NormalSource | undefined, who: string): Float32Array {
  if (rng === undefined) throw new SchedulerError(`${who} needs a noise source (rng) for this step`);
  const noise = new Float32Array(length);
  for (let i = 0; i < length; i++) noise[i] = rng();
  return noise;
}

/** Only LCM takes setTimesteps options; for the others img2img strength is the pipeline's begin index. */
export function refuseOptions(options: SetTimestepsOptions | undefined, who: string): void {
  if (options !== undefined && Object.values(options).some((value) => value !== undefined)) {
    throw new SchedulerError(
      `${who}.setTimesteps takes no options (strength, originalInferenceSteps and timesteps are LCM-only)`,
    );
  }
}
