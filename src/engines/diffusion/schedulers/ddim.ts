/**
 * DDIMScheduler: formulas (12) and (16) of Song et al., "Denoising Diffusion Implicit Models"
 * (arXiv 2010.02502). Port of diffusers `schedulers/scheduling_ddim.py`. With η = 0 (the default)
 * the step is deterministic; η = 1 is DDPM-like and draws noise from the step's `rng`.
 * Not implemented: dynamic thresholding (refused by the config parser) and
 * `use_clipped_model_output` (the SD pipelines leave it off).
 */
import {
  alphasCumprodFor,
  betasFor,
  checkSameLength,
  checkStepCount,
  drawNoise,
  type NormalSource,
  refuseOptions,
  type Scheduler,
  type SchedulerConfig,
  SchedulerError,
  type SetTimestepsOptions,
  spacedTimesteps,
  type StepResult,
} from './common.ts';
import { alphaSpaceAddNoise, alphaSpaceX0, clipInPlace } from './prediction.ts';

const NAME = 'DDIMScheduler';

export interface DdimOptions {
  /**
   * η of formula (16): 0 is DDIM, 1 adds DDPM's variance. diffusers passes it to each step; here it is fixed per
   * scheduler.
   */
  eta?: number;
}

export class DDIMScheduler implements Scheduler {
  readonly order = 1;
  /** DDIM works on x_t = √ᾱ·x0 + √(1−ᾱ)·ε, which the UNet was trained on directly: no input scaling. */
  readonly initNoiseSigma = 1;
  readonly alphasCumprod: Float32Array;
  /** ᾱ used "after" t = 0: 1 with set_alpha_to_one, else ᾱ_0 (SD configs: false). */
  readonly finalAlphaCumprod: number;
  readonly eta: number;
  private timestepList: number[];
  private steps: number | null = null;

  constructor(
    readonly config: SchedulerConfig,
    options: DdimOptions = {},
  ) {
    const eta = options.eta ?? 0;
    if (!(eta >= 0 && eta <= 1)) throw new SchedulerError(`${NAME}: eta must be between 0 and 1, got ${eta}`);
    this.eta = eta;
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

  /** Integer timesteps; "linspace" is rounded half-to-even as numpy does. */
  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    refuseOptions(options, NAME);
    checkStepCount(this.config, numInferenceSteps);
    this.steps = numInferenceSteps;
    this.timestepList = spacedTimesteps(this.config, numInferenceSteps, 'rounded');
  }

  /** DDIM reads ᾱ from the timestep itself, so a mid-schedule start needs no bookkeeping. */
  setBeginIndex(_index: number): void {}

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: NormalSource): StepResult {
    if (this.steps === null) throw new SchedulerError(`${NAME}: call setTimesteps before step`);
    checkSameLength(modelOutput, sample);
    // 1. The previous timestep is always t − T/N, also with "trailing" spacing (diffusers does the same).
    const prevTimestep = timestep - Math.floor(this.config.num_train_timesteps / this.steps);
    // 2. ᾱ_t and ᾱ_{t−1}.
    const alphaProdT = this.alphaAt(timestep);
    const alphaProdPrev = prevTimestep >= 0 ? this.alphaAt(prevTimestep) : this.finalAlphaCumprod;
    // 3. x0 and the noise it implies; 4. optional clipping of x0.
    const { x0, epsilon } = alphaSpaceX0(this.config.prediction_type, modelOutput, sample, alphaProdT);
    if (this.config.clip_sample) clipInPlace(x0, this.config.clip_sample_range);
    // 5. σ_t(η) of formula (16).
    const variance = ((1 - alphaProdPrev) / (1 - alphaProdT)) * (1 - alphaProdT / alphaProdPrev);
    const stdDev = this.eta * Math.sqrt(variance);
    // 6. "direction pointing to x_t" and 7. x_{t−1} of formula (12), plus σ_t·z when η > 0.
    // 1 − ᾱ_prev − σ_t² ≥ 0 in exact arithmetic; the clamp keeps η = 1 from a NaN by rounding.
    const direction = Math.sqrt(Math.max(0, 1 - alphaProdPrev - stdDev * stdDev));
    const signal = Math.sqrt(alphaProdPrev);
    const noise = stdDev > 0 ? drawNoise(sample.length, rng, `${NAME} with eta > 0`) : null;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const z = noise === null ? 0 : stdDev * (noise[i] as number);
      prevSample[i] = signal * (x0[i] as number) + direction * (epsilon[i] as number) + z;
    }
    return { prevSample, predOriginalSample: x0 };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(noise, original);
    return alphaSpaceAddNoise(original, noise, this.alphaAt(timestep));
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
