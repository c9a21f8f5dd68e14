import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  createScheduler,
  DDIMScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  LCMScheduler,
  parseSchedulerConfig,
  SchedulerConfigError,
  SchedulerError,
} from '../../../src/engines/diffusion/schedulers/index.ts';

function throwsNaming(json: unknown, field: string): void {
  assert.throws(
    () => parseSchedulerConfig(json),
    (error: unknown) => error instanceof SchedulerConfigError && error.field === field && error.message.includes(field),
    `expected an error naming ${field}`,
  );
}

const EULER = { _class_name: 'EulerDiscreteScheduler' };

// Shaped like the scheduler_config.json files of the HF repos named in docs/diffusion.md ("Family constants", "Known
// ONNX repositories").
const SD_TURBO = {
  _class_name: 'EulerDiscreteScheduler',
  _diffusers_version: '0.24.0.dev0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  interpolation_type: 'linear',
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  sample_max_value: 1.0,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'trailing',
  trained_betas: null,
  use_karras_sigmas: false,
};
const SD15 = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.6.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

test('an SD-Turbo scheduler config parses, ignoring keys diffusers ignores', () => {
  const config = parseSchedulerConfig(SD_TURBO);
  assert.equal(config._class_name, 'EulerDiscreteScheduler');
  assert.equal(config.timestep_spacing, 'trailing');
  assert.equal(config.beta_schedule, 'scaled_linear');
  assert.equal(config.trained_betas, null);
  assert.equal('skip_prk_steps' in config, false);
});

test('defaults follow each class’s diffusers __init__', () => {
  const euler = parseSchedulerConfig(EULER);
  assert.deepEqual(
    [euler.beta_start, euler.beta_end, euler.beta_schedule, euler.timestep_spacing],
    [0.0001, 0.02, 'linear', 'linspace'],
  );
  assert.equal(euler.prediction_type, 'epsilon');
  const ddim = parseSchedulerConfig({ _class_name: 'DDIMScheduler' });
  assert.deepEqual([ddim.timestep_spacing, ddim.clip_sample, ddim.set_alpha_to_one], ['leading', true, true]);
  const lcm = parseSchedulerConfig({ _class_name: 'LCMScheduler' });
  assert.deepEqual([lcm.beta_start, lcm.beta_end, lcm.beta_schedule], [0.00085, 0.012, 'scaled_linear']);
  assert.deepEqual(
    [lcm.original_inference_steps, lcm.timestep_scaling, lcm.set_alpha_to_one, lcm.clip_sample],
    [50, 10, true, false],
  );
  const pndm = parseSchedulerConfig({ _class_name: 'PNDMScheduler' });
  assert.deepEqual([pndm.timestep_spacing, pndm.set_alpha_to_one], ['leading', false]);
});

test('null values take the default, as diffusers’ None does', () => {
  const config = parseSchedulerConfig({ ...EULER, steps_offset: null, timestep_spacing: null });
  assert.equal(config.steps_offset, 0);
  assert.equal(config.timestep_spacing, 'linspace');
});

test('parse errors name the offending field', () => {
  throwsNaming([], '(root)');
  throwsNaming({}, '_class_name');
  throwsNaming({ _class_name: 'DPMSolverMultistepScheduler' }, '_class_name');
  throwsNaming({ ...EULER, num_train_timesteps: '1000' }, 'num_train_timesteps');
  throwsNaming({ ...EULER, num_train_timesteps: 999.5 }, 'num_train_timesteps');
  throwsNaming({ ...EULER, beta_start: 0 }, 'beta_start');
  throwsNaming({ ...EULER, beta_end: 1.5 }, 'beta_end');
  throwsNaming({ ...EULER, beta_schedule: 'cosine' }, 'beta_schedule');
  throwsNaming({ ...EULER, prediction_type: 'flow' }, 'prediction_type');
  throwsNaming({ ...EULER, timestep_spacing: 'even' }, 'timestep_spacing');
  throwsNaming({ ...EULER, steps_offset: -1 }, 'steps_offset');
  throwsNaming({ ...EULER, set_alpha_to_one: 'false' }, 'set_alpha_to_one');
  throwsNaming({ ...EULER, clip_sample_range: -1 }, 'clip_sample_range');
  throwsNaming({ ...EULER, final_sigmas_type: 'one' }, 'final_sigmas_type');
  throwsNaming({ ...EULER, trained_betas: [0.1, 0.2] }, 'trained_betas');
  throwsNaming({ ...EULER, trained_betas: 'none' }, 'trained_betas');
  throwsNaming({ _class_name: 'LCMScheduler', original_inference_steps: 2000 }, 'original_inference_steps');
});

test('schedule options easel does not implement are refused by name', () => {
  throwsNaming({ ...EULER, beta_schedule: 'squaredcos_cap_v2' }, 'beta_schedule');
  throwsNaming({ ...EULER, use_karras_sigmas: true }, 'use_karras_sigmas');
  throwsNaming({ ...EULER, use_exponential_sigmas: true }, 'use_exponential_sigmas');
  throwsNaming({ ...EULER, use_beta_sigmas: true }, 'use_beta_sigmas');
  throwsNaming({ _class_name: 'DDIMScheduler', thresholding: true }, 'thresholding');
  throwsNaming({ ...EULER, interpolation_type: 'log_linear' }, 'interpolation_type');
  assert.throws(
    () => parseSchedulerConfig({ ...EULER, use_karras_sigmas: true }),
    /use_karras_sigmas true is not supported yet/,
  );
});

test('trained_betas of the right length replace the β schedule', () => {
  const betas = Array.from({ length: 10 }, () => 0.1);
  const scheduler = new DDIMScheduler(
    parseSchedulerConfig({ _class_name: 'DDIMScheduler', num_train_timesteps: 10, trained_betas: betas }),
  );
  assert.equal(scheduler.alphasCumprod[1], Math.fround(Math.fround(0.9) * Math.fround(0.9)));
});

test('createScheduler picks the class named by _class_name, with no note', () => {
  const cases = [
    ['EulerDiscreteScheduler', EulerDiscreteScheduler],
    ['EulerAncestralDiscreteScheduler', EulerAncestralDiscreteScheduler],
    ['DDIMScheduler', DDIMScheduler],
    ['LCMScheduler', LCMScheduler],
  ] as const;
  for (const [name, type] of cases) {
    const { scheduler, note } = createScheduler(parseSchedulerConfig({ _class_name: name }));
    assert.ok(scheduler instanceof type, name);
    assert.equal(note, undefined);
  }
});

test('an SD 1.5 PNDM config becomes DDIM (η 0, no clipping, same final ᾱ) with a note', () => {
  const { scheduler, note } = createScheduler(parseSchedulerConfig({ ...SD15, clip_sample: true }));
  assert.ok(scheduler instanceof DDIMScheduler);
  assert.equal(scheduler.config._class_name, 'DDIMScheduler');
  assert.equal(scheduler.config.clip_sample, false);
  assert.equal(scheduler.eta, 0);
  assert.equal(scheduler.finalAlphaCumprod, scheduler.alphasCumprod[0]);
  assert.match(note ?? '', /PNDMScheduler is not implemented; using DDIMScheduler/);
});

test('an LMS config becomes Euler on the same σs, with a note', () => {
  const { scheduler, note } = createScheduler(parseSchedulerConfig({ ...SD15, _class_name: 'LMSDiscreteScheduler' }));
  assert.ok(scheduler instanceof EulerDiscreteScheduler);
  // LMS's own default spacing (linspace) carries over, since the config did not name one.
  assert.equal(scheduler.config.timestep_spacing, 'linspace');
  assert.match(note ?? '', /LMSDiscreteScheduler is not implemented; using EulerDiscreteScheduler/);
});

test('EulerAncestral refuses prediction_type "sample", as diffusers does', () => {
  const config = parseSchedulerConfig({ _class_name: 'EulerAncestralDiscreteScheduler', prediction_type: 'sample' });
  assert.throws(() => createScheduler(config), SchedulerError);
});

test('DDIM refuses η outside [0, 1]', () => {
  const config = parseSchedulerConfig({ _class_name: 'DDIMScheduler' });
  assert.throws(() => createScheduler(config, { eta: 1.5 }), /eta must be between 0 and 1/);
});
