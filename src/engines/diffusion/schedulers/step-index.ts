/**
 * Which entry of `timesteps` a call refers to. Schedulers that walk a list (Euler, EulerAncestral,
 * LCM) keep a step index as diffusers does, instead of looking every timestep up, because a
 * schedule may hold the same timestep twice.
 */
import { SchedulerError } from './common.ts';

const f32 = Math.fround;

/**
 * `index_for_timestep`: the position of `timestep` in the schedule. When it occurs twice the
 * second is taken, so that starting mid-schedule (img2img) does not skip a σ. Timesteps are
 * compared as float32, the precision they are stored in.
 */
export function indexForTimestep(timesteps: readonly number[], timestep: number): number {
  const key = f32(timestep);
  const matches: number[] = [];
  timesteps.forEach((t, i) => {
    if (t === key) matches.push(i);
  });
  const index = matches.length > 1 ? matches[1] : matches[0];
  if (index === undefined)
    throw new SchedulerError(`timestep ${timestep} is not in the schedule; pass a value of scheduler.timesteps`);
  return index;
}

/** Where a run stands: set on the first scaleModelInput/step, moved on by each step (diffusers `_step_index`). */
export class StepCounter {
  stepIndex: number | null = null;
  beginIndex: number | null = null;

  reset(): void {
    this.stepIndex = null;
    this.beginIndex = null;
  }

  /** `_init_step_index`: the begin index when the pipeline set one, else a lookup of the timestep. */
  current(timesteps: readonly number[], timestep: number): number {
    this.stepIndex ??= this.beginIndex ?? indexForTimestep(timesteps, timestep);
    return this.stepIndex;
  }

  /**
   * The index `add_noise` uses: a lookup when no begin index was set (training-style use), the
   * current index once stepping has started (inpainting blends), else the begin index (img2img).
   */
  forAddNoise(timesteps: readonly number[], timestep: number): number {
    if (this.beginIndex === null) return indexForTimestep(timesteps, timestep);
    return this.stepIndex ?? this.beginIndex;
  }

  advance(): void {
    if (this.stepIndex !== null) this.stepIndex += 1;
  }
}
