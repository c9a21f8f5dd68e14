/**
 * EulerDiscreteScheduler: Algorithm 2 of Karras et al. 2022 (arXiv 2206.00364) with s_churn = 0,
 * i.e. a deterministic Euler step of the probability-flow ODE in σ-space. Port of diffusers
 * `schedulers/scheduling_euler_discrete.py` (the scheduler of SD-Turbo, "trailing", and SDXL base,
 * "leading" + steps_offset 1). Not implemented: Karras/exponential/beta σs (refused by the config
 * parser), custom timesteps or σs, and s_churn (the SD pipelines never pass it).
 */
import {
  alphasCumprodFor,
  betasFor,
  checkSameLength,
  checkStepCount,
  type NormalSource,
  refuseOptions,
  type Scheduler,
  type SchedulerConfig,
  SchedulerError,
  type SetTimestepsOptions,
  spacedTimesteps,
  type StepResult,
} from './common.ts';
import { sigmaSpaceX0 } from './prediction.ts';
import { continuousTimesteps, interpolateSigmas, trainingSigmas } from './sigmas.ts';
import { StepCounter } from './step-index.ts';

const NAME = 'EulerDiscreteScheduler';

export class EulerDiscreteScheduler implements Scheduler {
  readonly order = 1;
  readonly alphasCumprod: Float32Array;
  /** σ for each training timestep, ascending in t. */
  readonly trainingSigmas: Float32Array;
  protected sigmaList: number[];
  protected timestepList: number[];
  protected steps: number | null = null;
  protected readonly counter = new StepCounter();

  constructor(readonly config: SchedulerConfig) {
    const alphasCumprod = alphasCumprodFor(betasFor(config));
    if (config.rescale_betas_zero_snr) {
      // ᾱ_T = 0 would make σ_max infinite; diffusers uses float16's smallest subnormal.
      alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
    }
    this.alphasCumprod = alphasCumprod;
    this.trainingSigmas = trainingSigmas(alphasCumprod);
    // Until setTimesteps, diffusers holds the whole training schedule (T−1 … 0).
    const sigmas = [...this.trainingSigmas].reverse();
    const T = config.num_train_timesteps;
    this.timestepList = this.continuous()
      ? continuousTimesteps(sigmas)
      : Array.from({ length: T }, (_, i) => T - 1 - i);
    this.sigmaList = [...sigmas, 0];
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  /** σ per timestep plus the final σ (0, or σ_min with final_sigmas_type "sigma_min"); float32 values. */
  get sigmas(): readonly number[] {
    return this.sigmaList;
  }

  get numInferenceSteps(): number | null {
    return this.steps;
  }

  /**
   * The latents start as N(0, σ_max²). "leading" starts below t = T−1, so its first UNet input is
   * scaled as if the noise had variance σ_max² + 1 (diffusers `init_noise_sigma`).
   */
  get initNoiseSigma(): number {
    const max = Math.max(...this.sigmaList);
    return this.config.timestep_spacing === 'leading' ? Math.sqrt(max * max + 1) : max;
  }

  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    refuseOptions(options, this.name);
    checkStepCount(this.config, numInferenceSteps);
    const timesteps = spacedTimesteps(this.config, numInferenceSteps, 'float32');
    const sigmas = interpolateSigmas(timesteps, this.trainingSigmas);
    const final = this.finalSigma();
    this.steps = numInferenceSteps;
    this.timestepList = this.continuous() ? continuousTimesteps(sigmas) : timesteps;
    this.sigmaList = [...sigmas, final];
    this.counter.reset();
  }

  setBeginIndex(index: number): void {
    this.counter.beginIndex = index;
  }

  /** The UNet was trained on inputs of unit variance: divide by √(σ² + 1). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmaList[this.counter.current(this.timestepList, timestep)] as number;
    const scale = Math.sqrt(sigma * sigma + 1);
    return sample.map((x) => x / scale);
  }

  /** `rng` is unused: with s_churn = 0 the step is deterministic. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _rng?: NormalSource): StepResult {
    checkSameLength(modelOutput, sample);
    const index = this.counter.current(this.timestepList, timestep);
    if (index + 1 >= this.sigmaList.length) throw new SchedulerError(`${this.name}: stepped past the last timestep`);
    const sigma = this.sigmaList[index] as number;
    const sigmaNext = this.sigmaList[index + 1] as number;
    // 1. x0 from the model output; 2. the ODE derivative d = (x − x0)/σ; 3. an Euler step to σ_next.
    const x0 = sigmaSpaceX0(this.config.prediction_type, modelOutput, sample, sigma);
    const dt = sigmaNext - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i] as number;
      const derivative = (x - (x0[i] as number)) / sigma;
      prevSample[i] = x + derivative * dt;
    }
    this.counter.advance();
    return { prevSample, predOriginalSample: x0 };
  }

  /** x0 + σ·ε at the σ of `timestep` (img2img start, inpainting blends). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(noise, original);
    const sigma = this.sigmaList[this.counter.forAddNoise(this.timestepList, timestep)] as number;
    return original.map((x, i) => x + (noise[i] as number) * sigma);
  }

  /** For messages; subclasses name themselves. */
  protected get name(): string {
    return NAME;
  }

  protected continuous(): boolean {
    return this.config.timestep_type === 'continuous' && this.config.prediction_type === 'v_prediction';
  }

  protected finalSigma(): number {
    return this.config.final_sigmas_type === 'sigma_min' ? (this.trainingSigmas[0] as number) : 0;
  }
}
