/**
 * EulerAncestralDiscreteScheduler: an Euler step down to σ_down followed by fresh noise of
 * standard deviation σ_up (k-diffusion `sample_euler_ancestral`). Port of diffusers
 * `schedulers/scheduling_euler_ancestral_discrete.py`, the scheduler of SDXL-Turbo ("trailing").
 * On the last step σ_to = 0, so σ_up = σ_down = 0 and the result is x0: a one-step run is
 * deterministic.
 */
import {
  checkSameLength,
  drawNoise,
  type NormalSource,
  type SchedulerConfig,
  SchedulerError,
  type StepResult,
} from './common.ts';
import { EulerDiscreteScheduler } from './euler-discrete.ts';
import { sigmaSpaceX0 } from './prediction.ts';

const NAME = 'EulerAncestralDiscreteScheduler';

/**
 * The same training σs, timesteps, input scaling and noising as EulerDiscreteScheduler; only the
 * step differs. diffusers' ancestral scheduler has no continuous timesteps and always ends at σ = 0.
 */
export class EulerAncestralDiscreteScheduler extends EulerDiscreteScheduler {
  constructor(config: SchedulerConfig) {
    if (config.prediction_type === 'sample') {
      throw new SchedulerError(
        `${NAME} does not support prediction_type "sample" (diffusers raises NotImplementedError)`,
      );
    }
    super(config);
  }

  /** Draws `sample.length` normals from `rng`, except on a step to σ = 0 where none is needed. */
  override step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: NormalSource): StepResult {
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

  protected override get name(): string {
    return NAME;
  }

  protected override continuous(): boolean {
    return false;
  }

  protected override finalSigma(): number {
    return 0;
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
