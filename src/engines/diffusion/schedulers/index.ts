/**
 * The schedulers' public face: `createScheduler` picks the class named by `_class_name`.
 * Other folders import from here, not from the files behind it.
 *
 * Two classes common in SD 1.x/2.x exports are not implemented and are substituted, with a note
 * for the log (the choice is the same a diffusers user makes with `X.from_config(pipe.scheduler.config)`):
 * - PNDMScheduler (SD 1.5, SD 2.1-base) → DDIMScheduler, η = 0, on the same βs, spacing, offset
 *   and final ᾱ. PNDM's PLMS path steps with the same DDIM-style transfer on the same timesteps
 *   but combines up to four past noise predictions; DDIM is its first-order form. `clip_sample`
 *   is forced off because PNDM never clips (DDIM's default would clip latents to ±1).
 * - LMSDiscreteScheduler → EulerDiscreteScheduler on the same σs. LMS is a linear multistep
 *   method over those σs, of which Euler is the one-step case; input scaling and initial noise
 *   are identical.
 * Results differ from diffusers with the original class, more so at low step counts.
 */
import type { Scheduler, SchedulerConfig } from './common.ts';
import { type DdimOptions, DDIMScheduler } from './ddim.ts';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.ts';
import { EulerDiscreteScheduler } from './euler-discrete.ts';
import { LCMScheduler } from './lcm.ts';

export * from './common.ts';
export { type DdimOptions, DDIMScheduler } from './ddim.ts';
export { ancestralSigmas, EulerAncestralDiscreteScheduler } from './euler-ancestral.ts';
export { EulerDiscreteScheduler } from './euler-discrete.ts';
export { lcmBoundaryScalings, LCMScheduler } from './lcm.ts';

export interface CreatedScheduler {
  scheduler: Scheduler;
  /** Set when the config named a class easel substitutes; worth a log line at model load. */
  note?: string;
}

export function createScheduler(config: SchedulerConfig, options: DdimOptions = {}): CreatedScheduler {
  switch (config._class_name) {
    case 'EulerDiscreteScheduler':
      return { scheduler: new EulerDiscreteScheduler(config) };
    case 'EulerAncestralDiscreteScheduler':
      return { scheduler: new EulerAncestralDiscreteScheduler(config) };
    case 'DDIMScheduler':
      return { scheduler: new DDIMScheduler(config, options) };
    case 'LCMScheduler':
      return { scheduler: new LCMScheduler(config) };
    case 'PNDMScheduler':
      return {
        scheduler: new DDIMScheduler({ ...config, _class_name: 'DDIMScheduler', clip_sample: false }, { eta: 0 }),
        note: 'PNDMScheduler is not implemented; using DDIMScheduler (eta 0) with the same timesteps and betas',
      };
    case 'LMSDiscreteScheduler':
      return {
        scheduler: new EulerDiscreteScheduler({ ...config, _class_name: 'EulerDiscreteScheduler' }),
        note: 'LMSDiscreteScheduler is not implemented; using EulerDiscreteScheduler with the same sigmas',
      };
  }
}
