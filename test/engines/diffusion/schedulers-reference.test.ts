/**
 * Reference numbers for SD's schedule (scaled_linear 0.00085 → 0.012, T = 1000), printed by
 * tools/reference-values/schedulers.py from diffusers' own schedulers (diffusers 0.3x, torch 2.x,
 * x86-64 CPU) and from the same formulas in float64; docs/schedulers.md ("Reference values") says
 * how to run it. Values have 6–10 significant digits. easel's tables are float32 as in diffusers,
 * so each value is compared with a relative tolerance of 1e-5 (float32 vs float64 differ by
 * ~1e-6); where the float32 and float64 values differ by more, the comment says which is used.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ancestralSigmas,
  betasFor,
  createScheduler,
  DDIMScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  img2imgStartIndex,
  lcmBoundaryScalings,
  LCMScheduler,
  parseSchedulerConfig,
  type SchedulerClassName,
} from '../../../src/engines/diffusion/schedulers/index.ts';
import { alphaSpaceX0 } from '../../../src/engines/diffusion/schedulers/prediction.ts';

const REL = 1e-5;

function assertClose(actual: number, expected: number, what: string, rel = REL): void {
  const tolerance = rel * Math.abs(expected);
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: got ${actual}, expected ${expected} ± ${tolerance.toExponential(1)}`,
  );
}

function assertAllClose(actual: readonly number[], expected: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  expected.forEach((value, i) => assertClose(actual[i] as number, value, `${what}[${i}]`));
}

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000 };

function config(className: SchedulerClassName, extra: Record<string, unknown> = {}) {
  return parseSchedulerConfig({ _class_name: className, ...SD, ...extra });
}

function euler(spacing: string, stepsOffset = 0): EulerDiscreteScheduler {
  return new EulerDiscreteScheduler(
    config('EulerDiscreteScheduler', { timestep_spacing: spacing, steps_offset: stepsOffset }),
  );
}

function ddim(spacing: string, stepsOffset: number, prediction = 'epsilon'): DDIMScheduler {
  const extra = {
    timestep_spacing: spacing,
    steps_offset: stepsOffset,
    set_alpha_to_one: false,
    clip_sample: false,
    prediction_type: prediction,
  };
  return new DDIMScheduler(config('DDIMScheduler', extra));
}

// σ at t = 0 is compared with the float32 value: 1 − ᾱ_0 cancels, so float32 and float64 differ by 1.3e-5 there.
const SIGMA = { 0: 0.029167533, 1: 0.041314412, 249: 0.6932049, 499: 1.6128862, 749: 4.0817294, 999: 14.614641 };

test('scaled_linear βs run from 0.00085 to 0.012', () => {
  const betas = betasFor(config('EulerDiscreteScheduler'));
  assert.equal(betas.length, 1000);
  assertClose(betas[0] as number, 0.00085, 'β_0');
  assertClose(betas[999] as number, 0.012, 'β_999');
});

test('ᾱ and σ at t = 0, 1, 249, 259, 499, 749, 759, 999 match the reference table', () => {
  const scheduler = euler('trailing');
  const table: [number, number, number][] = [
    [0, 0.99915, 0.029167533],
    [1, 0.9982960278, 0.041314412],
    [249, 0.6754324137, 0.6932049],
    [259, 0.6589755269, 0.71937962],
    [499, 0.2776696505, 1.6128862],
    [749, 0.0566234916, 4.0817294],
    [759, 0.05221292829, 4.2605569],
    [999, 0.0046600895, 14.614655], // the float32 values (diffusers' tables)
  ];
  for (const [t, alphaBar, sigma] of table) {
    assertClose(scheduler.alphasCumprod[t] as number, alphaBar, `ᾱ_${t}`);
    assertClose(scheduler.trainingSigmas[t] as number, sigma, `σ_${t}`);
  }
  assertClose(scheduler.alphasCumprod[999] as number, 0.004660098513, 'ᾱ_999 against the float64 value');
  assertClose(scheduler.trainingSigmas[999] as number, 14.614641, 'σ_max against the float64 value');
});

test('the β and ᾱ tables equal torch 2.13 float32 values bit for bit', () => {
  // Values printed by torch.linspace(…, dtype=torch.float32) and torch.cumprod on an x86-64 CPU (the script's "torch
  // float32 tables").
  const scaled = euler('trailing');
  const scaledBetas = betasFor(scaled.config);
  assert.deepEqual(
    [1, 500, 999].map((i) => scaledBetas[i]),
    [0.0008546985918655992, 0.004814953543245792, 0.011999999172985554],
  );
  assert.deepEqual(
    [1, 500, 999].map((i) => scaled.alphasCumprod[i]),
    [0.9982960224151611, 0.27633246779441833, 0.00466009508818388],
  );
  const linear = new DDIMScheduler(parseSchedulerConfig({ _class_name: 'DDIMScheduler' }));
  const linearBetas = betasFor(linear.config);
  assert.deepEqual(
    [1, 500, 999].map((i) => linearBetas[i]),
    [0.00011991991777904332, 0.010059959255158901, 0.019999999552965164],
  );
  assert.deepEqual(
    [1, 500, 999].map((i) => linear.alphasCumprod[i]),
    [0.9997800588607788, 0.07779665291309357, 4.035830352222547e-5],
  );
});

test('Euler timesteps and σs for each spacing and step count of the reference', () => {
  const cases: [string, number, number, number[], number[]][] = [
    ['trailing', 0, 1, [999], [SIGMA[999], 0]],
    ['leading', 1, 1, [1], [SIGMA[1], 0]],
    ['trailing', 0, 2, [999, 499], [SIGMA[999], SIGMA[499], 0]],
    ['trailing', 0, 4, [999, 749, 499, 249], [SIGMA[999], SIGMA[749], SIGMA[499], SIGMA[249], 0]],
    ['leading', 1, 4, [751, 501, 251, 1], [4.116696, 1.623692, 0.698398, SIGMA[1], 0]],
    ['linspace', 0, 4, [999, 666, 333, 0], [SIGMA[999], 2.918307, 0.932358, SIGMA[0], 0]],
  ];
  for (const [spacing, offset, n, timesteps, sigmas] of cases) {
    const scheduler = euler(spacing, offset);
    scheduler.setTimesteps(n);
    const what = `${spacing}${offset ? ` (offset ${offset})` : ''} N=${n}`;
    assert.deepEqual(scheduler.timesteps, timesteps, `${what} timesteps`);
    assertAllClose(scheduler.sigmas, sigmas, `${what} σ`);
  }
});

test('Euler linspace N=8 has non-integer timesteps (856.2857…)', () => {
  const scheduler = euler('linspace');
  scheduler.setTimesteps(8);
  assertClose(scheduler.timesteps[1] as number, 856.2857142857, 'timesteps[1]');
  assert.equal(scheduler.timesteps.filter((t) => !Number.isInteger(t)).length, 6);
});

test('initNoiseSigma is σ_max for trailing and linspace, √(σ_max² + 1) for leading', () => {
  const trailing = euler('trailing');
  trailing.setTimesteps(4);
  assertClose(trailing.initNoiseSigma, SIGMA[999], 'trailing');
  const linspace = euler('linspace');
  linspace.setTimesteps(4);
  assertClose(linspace.initNoiseSigma, SIGMA[999], 'linspace');
  // Before setTimesteps the schedule is the full training one, whose σ_max is the reference's.
  assertClose(euler('leading', 1).initNoiseSigma, 14.648814, 'leading, full schedule');
  const leading = euler('leading', 1);
  leading.setTimesteps(4);
  assertClose(leading.initNoiseSigma, Math.sqrt(4.116696 ** 2 + 1), 'leading N=4');
  assert.equal(ddim('leading', 1).initNoiseSigma, 1);
});

test('Euler worked example (x=1, ε=0.5, N=4 trailing, first step)', () => {
  const scheduler = euler('trailing');
  scheduler.setTimesteps(4);
  const x = new Float32Array([1]);
  assertClose(scheduler.scaleModelInput(x, 999)[0] as number, 0.06826491, 'UNet input');
  const { prevSample, predOriginalSample } = scheduler.step(new Float32Array([0.5]), 999, x);
  assertClose(predOriginalSample?.[0] as number, -6.3073206, 'x0');
  assertClose(prevSample[0] as number, -4.2664559, 'x_prev');
});

test('EulerAncestral σ_up and σ_down for N=4 trailing, and a step with z = 0.3', () => {
  const scheduler = new EulerAncestralDiscreteScheduler(
    config('EulerAncestralDiscreteScheduler', { timestep_spacing: 'trailing' }),
  );
  scheduler.setTimesteps(4);
  const sigmas = scheduler.sigmas;
  const expected = [
    [3.919304, 1.139988],
    [1.481626, 0.637328],
    [0.625914, 0.297934],
    [0, 0],
  ] as const;
  expected.forEach(([up, down], i) => {
    const got = ancestralSigmas(sigmas[i] as number, sigmas[i + 1] as number);
    if (up === 0) assert.deepEqual(got, { up: 0, down: 0 }, 'last step');
    else {
      assertClose(got.up, up, `step ${i} σ_up`);
      assertClose(got.down, down, `step ${i} σ_down`);
    }
  });
  // x_prev = x + d·(σ_down − σ) + z·σ_up with d = ε for an epsilon model.
  const { prevSample } = scheduler.step(new Float32Array([0.5]), 999, new Float32Array([1]), () => 0.3);
  assertClose(prevSample[0] as number, 1 + 0.5 * (1.139988 - 14.614641) + 0.3 * 3.919304, 'x_prev');
});

test('DDIM timesteps: N=4 trailing, N=4 leading (offset 1), N=50 leading (offset 1)', () => {
  const trailing = ddim('trailing', 0);
  trailing.setTimesteps(4);
  assert.deepEqual(trailing.timesteps, [999, 749, 499, 249]);
  const leading = ddim('leading', 1);
  leading.setTimesteps(4);
  assert.deepEqual(leading.timesteps, [751, 501, 251, 1]);
  leading.setTimesteps(50);
  assert.deepEqual(
    leading.timesteps,
    Array.from({ length: 50 }, (_, i) => 981 - 20 * i),
  );
});

test('DDIM worked example, epsilon (x=1, ε=0.5, 999 → 749, η=0)', () => {
  const scheduler = ddim('trailing', 0);
  scheduler.setTimesteps(4);
  const { prevSample, predOriginalSample } = scheduler.step(new Float32Array([0.5]), 999, new Float32Array([1]));
  assertClose(predOriginalSample?.[0] as number, 7.3414929, 'x0');
  assertClose(prevSample[0] as number, 2.2325968, 'x_prev');
});

test('DDIM worked example, v_prediction (x=1, v=0.5, 999 → 749)', () => {
  const scheduler = ddim('trailing', 0, 'v_prediction');
  scheduler.setTimesteps(4);
  const { prevSample, predOriginalSample } = scheduler.step(new Float32Array([0.5]), 999, new Float32Array([1]));
  assertClose(predOriginalSample?.[0] as number, -0.4305687, 'x0');
  const { epsilon } = alphaSpaceX0(
    'v_prediction',
    new Float32Array([0.5]),
    new Float32Array([1]),
    scheduler.alphasCumprod[999] as number,
  );
  assertClose(epsilon[0] as number, 1.0317997, 'ε̂');
  assertClose(prevSample[0] as number, 0.89970518, 'x_prev');
});

test('final ᾱ with set_alpha_to_one false is ᾱ_0 = 0.99915', () => {
  assertClose(ddim('leading', 1).finalAlphaCumprod, 0.99915, 'final ᾱ');
});

test('LCM timesteps for N = 1, 2, 4, 8', () => {
  const scheduler = new LCMScheduler(config('LCMScheduler'));
  const expected: Record<number, number[]> = {
    1: [999],
    2: [999, 499],
    4: [999, 759, 499, 259],
    8: [999, 879, 759, 639, 499, 379, 259, 139],
  };
  for (const [n, timesteps] of Object.entries(expected)) {
    scheduler.setTimesteps(Number(n));
    assert.deepEqual(scheduler.timesteps, timesteps, `N=${n}`);
  }
});

test('LCM c_skip and c_out at t = 999, 259, 19', () => {
  const expected: [number, number, number][] = [
    [999, 2.505008e-9, 0.999999998747],
    [259, 3.726838e-8, 0.999999981366],
    [19, 6.92516e-6, 0.999996537414],
  ];
  for (const [t, cSkip, cOut] of expected) {
    const got = lcmBoundaryScalings(t, 10);
    assertClose(got.cSkip, cSkip, `c_skip(${t})`);
    assertClose(got.cOut, cOut, `c_out(${t})`);
  }
});

test('LCM worked example (x=1, ε=0.5, t=999, next 759, z=0.3)', () => {
  const scheduler = new LCMScheduler(config('LCMScheduler', { set_alpha_to_one: false }));
  scheduler.setTimesteps(4);
  const { prevSample, predOriginalSample } = scheduler.step(
    new Float32Array([0.5]),
    999,
    new Float32Array([1]),
    () => 0.3,
  );
  assertClose(predOriginalSample?.[0] as number, 7.3414929, 'denoised');
  assertClose(prevSample[0] as number, 1.9696051, 'x_prev');
});

test('img2img N=4 trailing, strength 0.5: starts at index 2 and runs [499, 249]', () => {
  const scheduler = euler('trailing');
  scheduler.setTimesteps(4);
  const start = img2imgStartIndex(4, 0.5);
  assert.equal(start, 2);
  assert.deepEqual(scheduler.timesteps.slice(start), [499, 249]);
  scheduler.setBeginIndex(start);
  const noisy = scheduler.addNoise(new Float32Array([0]), new Float32Array([1]), 499);
  assertClose(noisy[0] as number, SIGMA[499], 'noise added at σ(499)');
});

test('a PNDM config (SD 1.5) runs DDIM on PNDM’s timesteps without the repeated one', () => {
  // diffusers' PNDM schedule for N=4 leading (offset 1) is [751, 501, 501, 251, 1]; PNDM is
  // substituted (see schedulers/index.ts), so easel runs the same timesteps once each.
  const { scheduler, note } = createScheduler(config('PNDMScheduler', { steps_offset: 1, skip_prk_steps: true }));
  scheduler.setTimesteps(4);
  assert.deepEqual(scheduler.timesteps, [751, 501, 251, 1]);
  assert.match(note ?? '', /PNDMScheduler/);
});
