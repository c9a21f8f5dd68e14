/**
 * Whole denoising loops, written as the pipeline will write them, on a toy "model": an oracle
 * that knows the clean sample x0 and so reads the exact noise off its input. Every scheduler must
 * then land on x0; the tolerance, 1e-5 absolute on values of order 1, covers float32 rounding
 * over the steps (the errors seen are about 1e-7).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { normalSource, randn } from '../../../src/engines/diffusion/random.ts';
import {
  alphasCumprodFor,
  betasFor,
  createScheduler,
  type NormalSource,
  parseSchedulerConfig,
  type Scheduler,
} from '../../../src/engines/diffusion/schedulers/index.ts';

type Model = (input: Float32Array, timestep: number) => Float32Array;

/**
 * A perfect model. Its input is x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (for Euler after scaleModelInput,
 * since 1/√(σ²+1) = √ᾱ), so ε = (x_t − √ᾱ_t·x0)/√(1−ᾱ_t); v = √ᾱ_t·ε − √(1−ᾱ_t)·x0.
 */
function oracle(x0: Float32Array, alphasCumprod: Float32Array, prediction: 'epsilon' | 'v_prediction'): Model {
  return (input, timestep) => {
    const alpha = alphasCumprod[timestep] as number;
    const [a, b] = [Math.sqrt(alpha), Math.sqrt(1 - alpha)];
    return input.map((xt, i) => {
      const epsilon = (xt - a * (x0[i] as number)) / b;
      return prediction === 'epsilon' ? epsilon : a * epsilon - b * (x0[i] as number);
    });
  };
}

/** The pipeline's loop: scale the input, run the model, step. */
function denoise(scheduler: Scheduler, model: Model, latents: Float32Array, rng?: NormalSource): Float32Array {
  for (const t of scheduler.timesteps) {
    const input = scheduler.scaleModelInput(latents, t);
    latents = scheduler.step(model(input, t), t, latents, rng).prevSample;
  }
  return latents;
}

function maxError(a: Float32Array, b: Float32Array): number {
  return a.reduce((max, value, i) => Math.max(max, Math.abs(value - (b[i] as number))), 0);
}

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' };
const clean = randn(256, 1).map((v) => 0.8 * v);
const noise = randn(256, 2);

function run(json: Record<string, unknown>, steps: number, rng?: NormalSource): Float32Array {
  const { scheduler } = createScheduler(parseSchedulerConfig({ ...SD, clip_sample: false, ...json }));
  scheduler.setTimesteps(steps);
  const alphas = alphasCumprodFor(betasFor(scheduler.config));
  const prediction = json['prediction_type'] === 'v_prediction' ? 'v_prediction' : 'epsilon';
  const start = scheduler.addNoise(clean, noise, scheduler.timesteps[0] as number);
  return denoise(scheduler, oracle(clean, alphas, prediction), start, rng);
}

const CASES: [string, Record<string, unknown>, number][] = [
  ['Euler, trailing, 4 steps', { _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'trailing' }, 4],
  [
    'Euler, leading + offset 1, 30 steps',
    { _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'leading', steps_offset: 1 },
    30,
  ],
  [
    'EulerAncestral, trailing, 4 steps',
    { _class_name: 'EulerAncestralDiscreteScheduler', timestep_spacing: 'trailing' },
    4,
  ],
  ['DDIM, leading + offset 1, 50 steps', { _class_name: 'DDIMScheduler', steps_offset: 1 }, 50],
  ['DDIM, trailing, 4 steps', { _class_name: 'DDIMScheduler', timestep_spacing: 'trailing' }, 4],
  ['LCM, 4 steps', { _class_name: 'LCMScheduler' }, 4],
];

for (const [name, json, steps] of CASES) {
  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    test(`${name}, ${prediction}: an oracle model's loop recovers x0 within 1e-5`, () => {
      const result = run({ ...json, prediction_type: prediction }, steps, normalSource(3));
      const error = maxError(result, clean);
      assert.ok(error < 1e-5, `max |x − x0| = ${error}`);
    });
  }
}

test('DDIM with set_alpha_to_one false ends at ᾱ_0’s noise level: √ᾱ_0·x0 + √(1−ᾱ_0)·ε (within 1e-5)', () => {
  const result = run({ _class_name: 'DDIMScheduler', steps_offset: 1, set_alpha_to_one: false }, 50);
  const a0 = 0.99915;
  const expected = clean.map((x, i) => Math.sqrt(a0) * x + Math.sqrt(1 - a0) * (noise[i] as number));
  assert.ok(maxError(result, expected) < 1e-5, `max error ${maxError(result, expected)}`);
  assert.ok(maxError(result, clean) > 1e-3, 'and so not on x0 itself');
});

/** A model that is no oracle, so that the drawn noise shows in the result. */
const constantModel: Model = (input) => input.map(() => 0.1);

function stochasticRun(className: string, seed: number): Float32Array {
  const { scheduler } = createScheduler(
    parseSchedulerConfig({ ...SD, _class_name: className, timestep_spacing: 'trailing' }),
  );
  scheduler.setTimesteps(4);
  return denoise(
    scheduler,
    constantModel,
    randn(64, 5).map((v) => v * scheduler.initNoiseSigma),
    normalSource(seed),
  );
}

for (const className of ['EulerAncestralDiscreteScheduler', 'LCMScheduler']) {
  test(`${className}: the same noise seed gives identical results, another seed different ones`, () => {
    assert.deepEqual(stochasticRun(className, 11), stochasticRun(className, 11));
    assert.notDeepEqual(stochasticRun(className, 11), stochasticRun(className, 12));
  });
}

test('Euler and DDIM (η = 0) draw no noise: a loop without a noise source is repeatable', () => {
  for (const className of ['EulerDiscreteScheduler', 'DDIMScheduler']) {
    const runOnce = () => {
      const { scheduler } = createScheduler(parseSchedulerConfig({ ...SD, _class_name: className }));
      scheduler.setTimesteps(10);
      return denoise(
        scheduler,
        constantModel,
        randn(64, 5).map((v) => v * scheduler.initNoiseSigma),
      );
    };
    assert.deepEqual(runOnce(), runOnce(), className);
  }
});
