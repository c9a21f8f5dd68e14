/**
 * Single steps on inputs where the formula's answer is plain, and the errors of misuse.
 * Tolerances: values are float32, so comparisons allow 1e-6 relative unless exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DDIMScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  LCMScheduler,
  parseSchedulerConfig,
  type SchedulerClassName,
  SchedulerError,
  spacedTimesteps,
} from '../../../src/engines/diffusion/schedulers/index.ts';
import { indexForTimestep } from '../../../src/engines/diffusion/schedulers/step-index.ts';

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' };

function config(className: SchedulerClassName, extra: Record<string, unknown> = {}) {
  return parseSchedulerConfig({ _class_name: className, ...SD, ...extra });
}

function close(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-6 * Math.max(1, Math.abs(expected)),
    `${what}: got ${actual}, expected ${expected}`,
  );
}

const x = new Float32Array([1, -2, 0.5, 3]);
const zeros = new Float32Array(4);
const noNoise = () => {
  throw new Error('no noise should be drawn');
};

test('Euler: a zero noise prediction leaves the sample unchanged', () => {
  const scheduler = new EulerDiscreteScheduler(config('EulerDiscreteScheduler', { timestep_spacing: 'trailing' }));
  scheduler.setTimesteps(4);
  const { prevSample, predOriginalSample } = scheduler.step(zeros, 999, x);
  assert.deepEqual(prevSample, x);
  assert.deepEqual(predOriginalSample, x);
});

test('Euler v_prediction: x0 = v·(−σ/√(σ²+1)) + x/(σ²+1), then x + (x − x0)/σ·(σ_next − σ)', () => {
  const scheduler = new EulerDiscreteScheduler(
    config('EulerDiscreteScheduler', { timestep_spacing: 'trailing', prediction_type: 'v_prediction' }),
  );
  scheduler.setTimesteps(2);
  const [sigma, next] = scheduler.sigmas as [number, number];
  const v = new Float32Array([0.5, 0, -1, 2]);
  const { prevSample, predOriginalSample } = scheduler.step(v, 999, x);
  x.forEach((xi, i) => {
    const x0 = (v[i] as number) * (-sigma / Math.sqrt(sigma * sigma + 1)) + xi / (sigma * sigma + 1);
    close(predOriginalSample?.[i] as number, x0, `x0[${i}]`);
    close(prevSample[i] as number, xi + ((xi - x0) / sigma) * (next - sigma), `x_prev[${i}]`);
  });
});

test('Euler "sample" prediction takes the model output as x0', () => {
  const scheduler = new EulerDiscreteScheduler(
    config('EulerDiscreteScheduler', { timestep_spacing: 'trailing', prediction_type: 'sample' }),
  );
  scheduler.setTimesteps(1);
  assert.deepEqual(scheduler.step(x, 999, zeros).prevSample, x, 'one step to σ = 0 lands on x0');
});

test('Euler final_sigmas_type "sigma_min" ends at σ_0 instead of 0', () => {
  const scheduler = new EulerDiscreteScheduler(
    config('EulerDiscreteScheduler', { final_sigmas_type: 'sigma_min', timestep_spacing: 'trailing' }),
  );
  scheduler.setTimesteps(4);
  assert.equal(scheduler.sigmas[4], scheduler.trainingSigmas[0]);
});

test('Euler continuous timesteps are 0.25·ln σ with v_prediction only', () => {
  const continuous = new EulerDiscreteScheduler(
    config('EulerDiscreteScheduler', {
      timestep_type: 'continuous',
      prediction_type: 'v_prediction',
      timestep_spacing: 'trailing',
    }),
  );
  continuous.setTimesteps(2);
  close(continuous.timesteps[0] as number, 0.25 * Math.log(continuous.sigmas[0] as number), 'timesteps[0]');
  const epsilon = new EulerDiscreteScheduler(
    config('EulerDiscreteScheduler', { timestep_type: 'continuous', timestep_spacing: 'trailing' }),
  );
  epsilon.setTimesteps(2);
  assert.deepEqual(epsilon.timesteps, [999, 499]);
});

test('DDIM: a zero noise prediction scales the sample by √(ᾱ_prev/ᾱ_t)', () => {
  const scheduler = new DDIMScheduler(config('DDIMScheduler', { clip_sample: false, timestep_spacing: 'trailing' }));
  scheduler.setTimesteps(4);
  const ratio = Math.sqrt((scheduler.alphasCumprod[749] as number) / (scheduler.alphasCumprod[999] as number));
  scheduler
    .step(zeros, 999, x)
    .prevSample.forEach((value, i) => close(value, (x[i] as number) * ratio, `x_prev[${i}]`));
});

test('DDIM "sample" prediction with final ᾱ = 1 lands exactly on the model’s x0', () => {
  const scheduler = new DDIMScheduler(
    config('DDIMScheduler', { clip_sample: false, prediction_type: 'sample', set_alpha_to_one: true }),
  );
  scheduler.setTimesteps(1);
  // One leading step: t = 0 → final ᾱ = 1, so x_prev = x0 exactly.
  assert.deepEqual(scheduler.timesteps, [0]);
  assert.deepEqual(scheduler.step(x, 0, zeros).prevSample, x);
});

test('DDIM clip_sample clamps x0 to ±clip_sample_range', () => {
  const scheduler = new DDIMScheduler(
    config('DDIMScheduler', { clip_sample: true, clip_sample_range: 0.75, timestep_spacing: 'trailing' }),
  );
  scheduler.setTimesteps(4);
  const x0 = scheduler.step(zeros, 999, x).predOriginalSample as Float32Array;
  assert.deepEqual([...x0], [0.75, -0.75, 0.75, 0.75]);
});

test('DDIM with η = 1 adds σ_t·z on top of the η = 0 step', () => {
  const make = (eta: number) => {
    const scheduler = new DDIMScheduler(config('DDIMScheduler', { clip_sample: false, timestep_spacing: 'trailing' }), {
      eta,
    });
    scheduler.setTimesteps(4);
    return scheduler;
  };
  const eps = new Float32Array([0.1, 0.2, 0.3, 0.4]);
  const [at, ap] = [make(0).alphasCumprod[999] as number, make(0).alphasCumprod[749] as number];
  const sigmaT = Math.sqrt(((1 - ap) / (1 - at)) * (1 - at / ap));
  const noisy = make(1).step(eps, 999, x, () => 1).prevSample;
  const x0 = make(0).step(eps, 999, x).predOriginalSample as Float32Array;
  x0.forEach((value, i) => {
    const expected = Math.sqrt(ap) * value + Math.sqrt(1 - ap - sigmaT * sigmaT) * (eps[i] as number) + sigmaT;
    close(noisy[i] as number, expected, `x_prev[${i}]`);
  });
});

test('DDIM linspace spacing rounds half to even, as numpy: N=5 gives [999, 749, 500, 250, 0]', () => {
  const scheduler = new DDIMScheduler(config('DDIMScheduler', { timestep_spacing: 'linspace' }));
  scheduler.setTimesteps(5);
  assert.deepEqual(scheduler.timesteps, [999, 749, 500, 250, 0]);
});

test('trailing spacing gives exactly N timesteps where numpy’s arange would append −1 (N=61)', () => {
  const timesteps = spacedTimesteps(config('DDIMScheduler', { timestep_spacing: 'trailing' }), 61, 'rounded');
  assert.equal(timesteps.length, 61);
  assert.deepEqual([timesteps[0], timesteps[1], timesteps[60]], [999, 983, 15]);
});

test('EulerAncestral: the last step (σ_to = 0) draws no noise and returns x0', () => {
  const scheduler = new EulerAncestralDiscreteScheduler(
    config('EulerAncestralDiscreteScheduler', { timestep_spacing: 'trailing' }),
  );
  scheduler.setTimesteps(1);
  const { prevSample, predOriginalSample } = scheduler.step(zeros, 999, x, noNoise);
  assert.deepEqual(prevSample, x);
  assert.deepEqual(predOriginalSample, x);
});

test('LCM: the last step returns the denoised estimate and draws no noise', () => {
  const scheduler = new LCMScheduler(config('LCMScheduler'));
  scheduler.setTimesteps(2);
  scheduler.step(zeros, 999, x, () => 0);
  const { prevSample, predOriginalSample } = scheduler.step(zeros, 499, x, noNoise);
  assert.deepEqual(prevSample, predOriginalSample);
});

test('LCM strength 0.5 picks from the first half of the distillation schedule: N=4 → [499, 379, 259, 139]', () => {
  const scheduler = new LCMScheduler(config('LCMScheduler'));
  scheduler.setTimesteps(4, { strength: 0.5 });
  assert.deepEqual(scheduler.timesteps, [499, 379, 259, 139]);
});

test('LCM custom timesteps must descend, and strength drops their head', () => {
  const scheduler = new LCMScheduler(config('LCMScheduler'));
  scheduler.setTimesteps(4, { timesteps: [999, 759, 499, 259], strength: 0.5 });
  assert.deepEqual(scheduler.timesteps, [499, 259]);
  assert.throws(() => scheduler.setTimesteps(2, { timesteps: [499, 759] }), /descending/);
  assert.throws(
    () => scheduler.setTimesteps(3, { timesteps: [999, 499] }),
    /must equal the number of custom timesteps/,
  );
});

test('LCM refuses more steps than original_inference_steps', () => {
  assert.throws(() => new LCMScheduler(config('LCMScheduler')).setTimesteps(51), SchedulerError);
  const longer = new LCMScheduler(config('LCMScheduler'));
  longer.setTimesteps(60, { originalInferenceSteps: 100 });
  assert.equal(longer.timesteps.length, 60);
});

test('stochastic steps without a noise source throw SchedulerError', () => {
  const ancestral = new EulerAncestralDiscreteScheduler(
    config('EulerAncestralDiscreteScheduler', { timestep_spacing: 'trailing' }),
  );
  ancestral.setTimesteps(4);
  assert.throws(() => ancestral.step(zeros, 999, x), /needs a noise source/);
  const lcm = new LCMScheduler(config('LCMScheduler'));
  lcm.setTimesteps(4);
  assert.throws(() => lcm.step(zeros, 999, x), /needs a noise source/);
  const ddim = new DDIMScheduler(config('DDIMScheduler'), { eta: 1 });
  ddim.setTimesteps(4);
  assert.throws(() => ddim.step(zeros, 751, x), /needs a noise source/);
});

test('misuse is refused: no setTimesteps, unknown timestep, wrong lengths, LCM-only options, bad step counts', () => {
  assert.throws(() => new DDIMScheduler(config('DDIMScheduler')).step(zeros, 999, x), /call setTimesteps before step/);
  assert.throws(() => new LCMScheduler(config('LCMScheduler')).step(zeros, 999, x), /call setTimesteps before step/);
  const euler = new EulerDiscreteScheduler(config('EulerDiscreteScheduler', { timestep_spacing: 'trailing' }));
  euler.setTimesteps(4);
  assert.throws(() => euler.step(zeros, 500, x), /timestep 500 is not in the schedule/);
  assert.throws(() => euler.step(new Float32Array(3), 999, x), /model output has 3 values/);
  assert.throws(() => euler.setTimesteps(4, { strength: 0.5 }), /LCM-only/);
  assert.throws(() => euler.setTimesteps(0), /numInferenceSteps must be an integer from 1 to 1000/);
  const ddim = new DDIMScheduler(config('DDIMScheduler'));
  ddim.setTimesteps(4);
  assert.throws(() => ddim.step(zeros, 1000, x), /timestep 1000 is not an integer from 0 to 999/);
});

test('a timestep that occurs twice resolves to its second occurrence on the first call', () => {
  assert.equal(indexForTimestep([751, 501, 501, 251], 501), 2);
  assert.equal(indexForTimestep([751, 501, 251], 501), 1);
});

test('setBeginIndex starts Euler mid-schedule without looking the timestep up', () => {
  const scheduler = new EulerDiscreteScheduler(config('EulerDiscreteScheduler', { timestep_spacing: 'trailing' }));
  scheduler.setTimesteps(4);
  scheduler.setBeginIndex(2);
  const sigma = scheduler.sigmas[2] as number;
  close(
    scheduler.scaleModelInput(new Float32Array([1]), 499)[0] as number,
    1 / Math.sqrt(sigma * sigma + 1),
    'scaled input',
  );
  const { prevSample } = scheduler.step(new Float32Array([1]), 499, new Float32Array([0]));
  close(prevSample[0] as number, (scheduler.sigmas[3] as number) - sigma, 'x_prev = ε·(σ_next − σ)');
});

test('addNoise: Euler adds σ·ε; DDIM and LCM mix √ᾱ·x0 + √(1−ᾱ)·ε', () => {
  const noise = new Float32Array([1, 1, 1, 1]);
  const euler = new EulerDiscreteScheduler(config('EulerDiscreteScheduler', { timestep_spacing: 'trailing' }));
  euler.setTimesteps(4);
  euler
    .addNoise(x, noise, 749)
    .forEach((v, i) => close(v, (x[i] as number) + (euler.sigmas[1] as number), `euler[${i}]`));
  for (const scheduler of [new DDIMScheduler(config('DDIMScheduler')), new LCMScheduler(config('LCMScheduler'))]) {
    const a = scheduler.alphasCumprod[759] as number;
    scheduler
      .addNoise(x, noise, 759)
      .forEach((v, i) =>
        close(v, Math.sqrt(a) * (x[i] as number) + Math.sqrt(1 - a), `${scheduler.constructor.name}[${i}]`),
      );
  }
});

test('zero-SNR rescale: ᾱ_T becomes 0 (Euler keeps 2^-24 so σ_max is finite) and ᾱ_0 is kept', () => {
  const plain = new DDIMScheduler(config('DDIMScheduler'));
  const ddim = new DDIMScheduler(config('DDIMScheduler', { rescale_betas_zero_snr: true }));
  const euler = new EulerDiscreteScheduler(config('EulerDiscreteScheduler', { rescale_betas_zero_snr: true }));
  assert.equal(ddim.alphasCumprod[999], 0);
  assert.equal(euler.alphasCumprod[999], 2 ** -24);
  close(euler.initNoiseSigma, Math.sqrt((1 - 2 ** -24) / 2 ** -24), 'σ_max');
  close(ddim.alphasCumprod[0] as number, plain.alphasCumprod[0] as number, 'ᾱ_0');
});
