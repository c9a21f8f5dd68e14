/**
 * EulerAncestralDiscreteScheduler: an Euler step down to σ_down followed by fresh noise of
 * standard deviation σ_up (k-diffusion `sample_euler_ancestral`). Port of diffusers
 * `schedulers/scheduling_euler_ancestral_discrete.py`, the scheduler of SDXL-Turbo ("trailing").
 * On the last step σ_to = 0, so σ_up = σ_down = 0 and the result is x0: a one-step run is
 * deterministic.
 */
import {
  alphasCumprodFor,
  betasFor,
  checkSameLength,
  checkStepCount,
  drawNoise,
  refuseOptions,
  SchedulerError,
  spacedTimesteps,
  type NormalSource,
  type Scheduler,
  type SchedulerConfig,
  type SetTimestepsOptions,
  type StepResult,
} from './common.ts';
import { sigmaSpaceX0 } from './prediction.ts';
import { interpolateSigmas, trainingSigmas } from './sigmas.ts';
import { StepCounter } from './step-index.ts';

const NAME = 'EulerAncestralDiscreteScheduler';

export class EulerAncestralDiscreteScheduler implements Scheduler {
  readonly order = 1;
  readonly alphasCumprod: Float32Array;
  readonly trainingSigmas: Float32Array;
  private sigmaList: number[];
  private timestepList: number[];
  private steps: number | null = null;
  private readonly counter = new StepCounter();

  constructor(readonly config: SchedulerConfig) {
    if (config.prediction_type === 'sample') {
      throw new SchedulerError(`${NAME} does not support prediction_type "sample" (diffusers raises NotImplementedError)`);
    }
    const alphasCumprod = alphasCumprodFor(betasFor(config));
    if (config.rescale_betas_zero_snr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
    this.alphasCumprod = alphasCumprod;
    this.trainingSigmas = trainingSigmas(alphasCumprod);
    const T = config.num_train_timesteps;
    this.timestepList = Array.from({ length: T }, (_, i) => T - 1 - i);
    this.sigmaList = [...[...this.trainingSigmas].reverse(), 0];
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  get sigmas(): readonly number[] {
    return this.sigmaList;
  }

  get numInferenceSteps(): number | null {
    return this.steps;
  }

  /** As EulerDiscreteScheduler: σ_max, or √(σ_max² + 1) with "leading" spacing. */
  get initNoiseSigma(): number {
    const max = Math.max(...this.sigmaList);
    return this.config.timestep_spacing === 'leading' ? Math.sqrt(max * max + 1) : max;
  }

  /** Same timesteps and σs as EulerDiscreteScheduler; the final σ is always 0 here. */
  setTimesteps(numInferenceSteps: number, options?: SetTimestepsOptions): void {
    refuseOptions(options, NAME);
    checkStepCount(this.config, numInferenceSteps);
    const timesteps = spacedTimesteps(this.config, numInferenceSteps, 'float32');
    this.steps = numInferenceSteps;
    this.timestepList = timesteps;
    this.sigmaList = [...interpolateSigmas(timesteps, this.trainingSigmas), 0];
    this.counter.reset();
  }

  setBeginIndex(index: number): void {
    this.counter.beginIndex = index;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmaList[this.counter.current(this.timestepList, timestep)] as number;
    const scale = Math.sqrt(sigma * sigma + 1);
    return sample.map((x) => x / scale);
  }

  /** Draws `sample.length` normals from `rng`, except on a step to σ = 0 where none is needed. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: NormalSource): StepResult {
    checkSameLength(modelOutput, sample);
    const index = this.counter.current(this.timestepList, timestep);
    if (index + 1 >= this.sigmaList.length) throw new SchedulerError(`${NAME}: stepped past the last timestep`);
    const { up, down } = ancestralSigmas(this.sigmaList[index] as number, this.sigmaList[index + 1] as number);
    const sigma = this.sigmaList[index] as number;
    const x0 = sigmaSpaceX0(this.config.prediction_type, modelOutput, sample, sigma);
    const noise = up > 0 ? drawNoise(sample.length, rng, NAME) : null;
    const dt = down - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i] as number;
      const derivative = (x - (x0[i] as number)) / sigma;
      prevSample[i] = x + derivative * dt + (noise === null ? 0 : (noise[i] as number) * up);
    }
    this.counter.advance();
    return { prevSample, predOriginalSample: x0 };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(noise, original);
    const sigma = this.sigmaList[this.counter.forAddNoise(this.timestepList, timestep)] as number;
    return original.map((x, i) => x + (noise[i] as number) * sigma);
  }
}

/**
 * Split the move from σ_from to σ_to into a deterministic part down to σ_down and fresh noise of
 * σ_up, with σ_down² + σ_up² = σ_to² (k-diffusion `get_ancestral_step`, eta = 1).
 */
export function ancestralSigmas(from: number, to: number): { up: number; down: number } {
  const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
  const down = Math.sqrt(to * to - up * up);
  return { up, down };
}
