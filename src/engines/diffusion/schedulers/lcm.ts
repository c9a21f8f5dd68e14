/**
 * LCMScheduler: multistep sampling of a Latent Consistency Model (Luo et al. 2023, arXiv
 * 2310.04378). Port of diffusers `schedulers/scheduling_lcm.py`. Each step maps x_t to the
 * consistency function's x0 estimate ("denoised"), then re-noises it to the next timestep with
 * fresh noise; the last step returns the estimate itself.
 *
 * The schedule is picked from the distillation schedule (`original_inference_steps`, 50 for LCM
 * Dreamshaper v7), so `timestep_spacing` and `steps_offset` are not used, as in diffusers.
 */
import {
  alphasCumprodFor,
  betasFor,
  checkSameLength,
  drawNoise,
  img2imgStartIndex,
  type NormalSource,
  type Scheduler,
  type SchedulerConfig,
  SchedulerError,
  type SetTimestepsOptions,
  type StepResult,
} from './common.ts';
import { alphaSpaceAddNoise, alphaSpaceX0, clipInPlace } from './prediction.ts';
import { StepCounter } from './step-index.ts';

const NAME = 'LCMScheduler';
/** σ_data of the consistency-model boundary conditions (diffusers hard-codes 0.5). */
const SIGMA_DATA = 0.5;

export class LCMScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly alphasCumprod: Float32Array;
  readonly finalAlphaCumprod: number;
  private timestepList: number[];
  private steps: number | null = null;
  private readonly counter = new StepCounter();

  constructor(readonly config: SchedulerConfig) {
    this.alphasCumprod = alphasCumprodFor(betasFor(config));
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : (this.alphasCumprod[0] as number);
    const T = config.num_train_timesteps;
    this.timestepList = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  get numInferenceSteps(): number | null {
    return this.steps;
  }

  /**
   * `k = T // original_steps`; the distillation schedule is `k·i − 1` for i = 1 … original_steps·strength;
   * `numInferenceSteps` of them are taken, evenly spaced by index, from the top down.
   */
  setTimesteps(numInferenceSteps: number, options: SetTimestepsOptions = {}): void {
    const T = this.config.num_train_timesteps;
    const originalSteps = options.originalInferenceSteps ?? this.config.original_inference_steps;
    const strength = options.strength ?? 1;
    if (!Number.isInteger(originalSteps) || originalSteps < 1 || originalSteps > T) {
      throw new SchedulerError(
        `${NAME}: originalInferenceSteps must be an integer from 1 to ${T}, got ${originalSteps}`,
      );
    }
    if (!(strength > 0 && strength <= 1))
      throw new SchedulerError(`${NAME}: strength must be in (0, 1], got ${strength}`);
    if (options.timesteps !== undefined) {
      this.useCustomTimesteps(numInferenceSteps, options.timesteps, strength);
      return;
    }
    const k = Math.floor(T / originalSteps);
    const origin = Array.from({ length: Math.trunc(originalSteps * strength) }, (_, i) => (i + 1) * k - 1);
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > originalSteps) {
      throw new SchedulerError(
        `${NAME}: numInferenceSteps must be an integer from 1 to originalInferenceSteps (${originalSteps}), got ${numInferenceSteps}`,
      );
    }
    if (Math.floor(origin.length / numInferenceSteps) < 1) {
      throw new SchedulerError(
        `${NAME}: originalInferenceSteps × strength (${origin.length}) is smaller than numInferenceSteps (${numInferenceSteps})`,
      );
    }
    origin.reverse();
    // np.floor(np.linspace(0, len(origin), num=N, endpoint=False)): indices spaced len/N apart.
    const spacing = origin.length / numInferenceSteps;
    this.timestepList = Array.from({ length: numInferenceSteps }, (_, i) => origin[Math.floor(i * spacing)] as number);
    this.steps = numInferenceSteps;
    this.counter.reset();
  }

  setBeginIndex(index: number): void {
    this.counter.beginIndex = index;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  /** Draws `sample.length` normals from `rng` on every step but the last. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: NormalSource): StepResult {
    if (this.steps === null) throw new SchedulerError(`${NAME}: call setTimesteps before step`);
    checkSameLength(modelOutput, sample);
    const index = this.counter.current(this.timestepList, timestep);
    // 1. The next timestep of the list (the last step reuses t; its ᾱ_prev is then unused).
    const isLast = index >= this.timestepList.length - 1;
    const prevTimestep = isLast ? timestep : (this.timestepList[index + 1] as number);
    // 2. ᾱ_t and ᾱ_prev.
    const alphaProdT = this.alphaAt(timestep);
    const alphaProdPrev = prevTimestep >= 0 ? this.alphaAt(prevTimestep) : this.finalAlphaCumprod;
    // 3. Boundary-condition scalings, 4. x0, 5. optional clipping, 6. the consistency estimate.
    const { cSkip, cOut } = lcmBoundaryScalings(timestep, this.config.timestep_scaling);
    const { x0 } = alphaSpaceX0(this.config.prediction_type, modelOutput, sample, alphaProdT);
    if (this.config.clip_sample) clipInPlace(x0, this.config.clip_sample_range);
    const denoised = x0.map((x, i) => cOut * x + cSkip * (sample[i] as number));
    // 7. Re-noise to the next timestep, except after the last one.
    let prevSample: Float32Array;
    if (isLast) prevSample = denoised.slice();
    else {
      const noise = drawNoise(sample.length, rng, NAME);
      const [a, b] = [Math.sqrt(alphaProdPrev), Math.sqrt(1 - alphaProdPrev)];
      prevSample = denoised.map((d, i) => a * d + b * (noise[i] as number));
    }
    this.counter.advance();
    return { prevSample, predOriginalSample: denoised };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(noise, original);
    return alphaSpaceAddNoise(original, noise, this.alphaAt(timestep));
  }

  /**
   * Custom descending timesteps (diffusers warns about off-schedule values; easel accepts them).
   * "Last step" is the last entry here, where diffusers compares with the unsliced count and
   * would re-noise after the final step of a custom schedule with strength < 1.
   */
  private useCustomTimesteps(numInferenceSteps: number, timesteps: readonly number[], strength: number): void {
    const T = this.config.num_train_timesteps;
    if (timesteps.length === 0 || numInferenceSteps !== timesteps.length) {
      throw new SchedulerError(
        `${NAME}: numInferenceSteps (${numInferenceSteps}) must equal the number of custom timesteps (${timesteps.length}, at least 1)`,
      );
    }
    timesteps.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= T)
        throw new SchedulerError(`${NAME}: custom timestep ${t} is not an integer from 0 to ${T - 1}`);
      if (i > 0 && t >= (timesteps[i - 1] as number))
        throw new SchedulerError(`${NAME}: custom timesteps must be in descending order`);
    });
    this.steps = timesteps.length;
    this.timestepList = timesteps.slice(img2imgStartIndex(timesteps.length, strength));
    this.counter.reset();
  }

  private alphaAt(timestep: number): number {
    const alpha = Number.isInteger(timestep) ? this.alphasCumprod[timestep] : undefined;
    if (alpha === undefined) {
      throw new SchedulerError(
        `${NAME}: timestep ${timestep} is not an integer from 0 to ${this.alphasCumprod.length - 1}`,
      );
    }
    return alpha;
  }
}

/**
 * `get_scalings_for_boundary_condition_discrete`: c_skip(t) + c_out(t)·F makes the consistency
 * function the identity at t = 0. Scaling t by `timestep_scaling` (10) makes that almost a delta.
 */
export function lcmBoundaryScalings(timestep: number, timestepScaling: number): { cSkip: number; cOut: number } {
  const scaled = timestep * timestepScaling;
  const denominator = scaled * scaled + SIGMA_DATA * SIGMA_DATA;
  return { cSkip: (SIGMA_DATA * SIGMA_DATA) / denominator, cOut: scaled / Math.sqrt(denominator) };
}
