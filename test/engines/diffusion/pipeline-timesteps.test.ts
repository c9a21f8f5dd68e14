// Which timesteps a run goes through, for text-to-image and for image-to-image's `strength`,
// checked on the schedule alone (no model): the count the pipeline tests see, here with the values.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { prepareTimesteps } from '../../../src/engines/diffusion/pipeline/pipeline.ts';
import { parseSchedulerConfig, type SchedulerClassName } from '../../../src/engines/diffusion/schedulers/index.ts';

const SD = {
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  timestep_spacing: 'trailing',
};
const config = (className: SchedulerClassName) => parseSchedulerConfig({ _class_name: className, ...SD });

test('text-to-image (strength 1) runs the whole schedule', () => {
  assert.deepEqual(prepareTimesteps(config('EulerDiscreteScheduler'), 4, 1).timesteps, [999, 749, 499, 249]);
});

test('image-to-image runs the last steps × strength timesteps of the schedule', () => {
  assert.deepEqual(prepareTimesteps(config('EulerDiscreteScheduler'), 4, 0.5).timesteps, [499, 249]);
  assert.deepEqual(prepareTimesteps(config('DDIMScheduler'), 4, 0.75).timesteps, [749, 499, 249]);
});

test('image-to-image runs at least the last timestep when steps × strength is below 1', () => {
  assert.deepEqual(prepareTimesteps(config('EulerDiscreteScheduler'), 4, 0.1).timesteps, [249]);
  assert.deepEqual(prepareTimesteps(config('EulerDiscreteScheduler'), 1, 0.5).timesteps, [999]);
});

test('LCM shortens its schedule from strength itself, and the pipeline does not cut it again', () => {
  const { scheduler, timesteps } = prepareTimesteps(config('LCMScheduler'), 4, 0.5);
  // diffusers' LCMScheduler.set_timesteps(4, strength=0.5): 4 of the first 25 of its 50 origin steps.
  assert.deepEqual(timesteps, [499, 379, 259, 139]);
  assert.deepEqual(timesteps, [...scheduler.timesteps]);
});

test('a scheduler class easel substitutes comes with a note', () => {
  assert.match(prepareTimesteps(config('PNDMScheduler'), 4, 1).note ?? '', /PNDMScheduler/);
  assert.equal(prepareTimesteps(config('EulerDiscreteScheduler'), 4, 1).note, undefined);
});
