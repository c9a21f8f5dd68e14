// How API parameters become generation settings (README, "Real images"): sizes, steps, prompts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  editStrength,
  generationSize,
  modelDefaults,
  plan,
  stepsFor,
  styledPrompt,
} from '../../../src/engines/diffusion/plan.ts';
import type { ModelInfo } from '../../../src/engines/diffusion/worker/protocol.ts';
import { editRequest, generationRequest, rgbaImage } from '../../helpers/requests.ts';

const info: ModelInfo = {
  family: 'sd2',
  familyReason: 'test',
  inpainting: false,
  canEdit: true,
  tinyDecoder: false,
  tinyEncoder: false,
  nativeResolution: 512,
  vaeScaleFactor: 8,
  schedulerClass: 'EulerDiscreteScheduler',
  timestepSpacing: 'trailing',
  loadMs: 1,
  threads: 2,
  attentionRewrite: null,
};

test('the native area at the requested aspect ratio, sides multiples of 64', () => {
  assert.deepEqual(generationSize(1024, 1024, 512, 64), { width: 512, height: 512 });
  assert.deepEqual(generationSize(1792, 1024, 512, 64), { width: 704, height: 384 });
  assert.deepEqual(generationSize(1024, 1792, 512, 64), { width: 384, height: 704 });
  assert.deepEqual(generationSize(1536, 1024, 1024, 64), { width: 1280, height: 832 });
  assert.deepEqual(
    generationSize(256, 256, 512, 64),
    { width: 512, height: 512 },
    'small sizes are made natively, then scaled down',
  );
  assert.deepEqual(
    generationSize(4000, 10, 512, 64),
    { width: 1024, height: 256 },
    'aspect ratios beyond 4:1 are made at 4:1 and stretched',
  );
  assert.deepEqual(generationSize(64, 64, 32, 64), { width: 64, height: 64 }, 'never below one block');
});

test('defaults per model kind, and quality scaling the steps', () => {
  assert.deepEqual(modelDefaults({ family: 'sd2', timestepSpacing: 'trailing' }), { steps: 2, guidanceScale: 0 });
  assert.deepEqual(modelDefaults({ family: 'lcm', timestepSpacing: 'leading' }), { steps: 4, guidanceScale: 8.5 });
  assert.deepEqual(modelDefaults({ family: 'sd1', timestepSpacing: 'leading' }), { steps: 25, guidanceScale: 7.5 });
  assert.deepEqual(
    ['low', 'standard', 'medium', null, 'hd', 'high'].map((q) => stepsFor(q, 25, false)),
    [13, 25, 25, 25, 50, 50],
  );
  assert.deepEqual(
    ['low', 'standard', 'hd'].map((q) => stepsFor(q, 2, true)),
    [1, 2, 4],
  );
  assert.deepEqual(
    ['low', 'standard', 'hd'].map((q) => stepsFor(q, 1, true)),
    [1, 1, 2],
  );
  assert.equal(stepsFor('high', 4, true), 4, 'distilled models stop at 4');
});

test('style becomes prompt wording; strength defaults by mask', () => {
  assert.equal(styledPrompt('a fox', 'vivid'), 'a fox, vivid colors, dramatic lighting, highly detailed');
  assert.equal(styledPrompt('a fox ', 'natural'), 'a fox, natural colors, soft natural light, realistic');
  assert.equal(styledPrompt('a fox', null), 'a fox');
  assert.equal(editStrength({ strength: null }, false), 0.75);
  assert.equal(editStrength({ strength: null }, true), 1);
  assert.equal(editStrength({ strength: 0.4 }, true), 0.4);
});

test('plan: a generation, a deployment override, an unmasked and a masked edit', async () => {
  const generation = await plan(
    generationRequest({ width: 1792, height: 1024, quality: 'hd', style: 'natural' }),
    info,
    { folder: '/m', scheduler: 'ddim' },
  );
  assert.deepEqual(generation.job, {
    prompt: 'a lighthouse on a cliff at dawn, watercolour, natural colors, soft natural light, realistic',
    width: 704,
    height: 384,
    steps: 4,
    guidanceScale: 0,
    scheduler: 'DDIMScheduler',
  });
  const fixed = await plan(generationRequest({ quality: 'hd' }), info, {
    folder: '/m',
    steps: 3,
    guidanceScale: 5,
    resolution: 768,
  });
  assert.deepEqual(
    [fixed.job.steps, fixed.job.guidanceScale, fixed.job.width],
    [6, 5, 768],
    'configured steps double without the Turbo cap',
  );

  const image = rgbaImage(64, 48, () => [10, 20, 30, 255]);
  const unmasked = await plan(editRequest(image, null, { strength: 0.3 }), info, { folder: '/m' });
  assert.equal(unmasked.job.init!.strength, 0.3);
  assert.equal(unmasked.job.init!.mask, undefined);
  assert.deepEqual(
    [unmasked.job.init!.image.width, unmasked.job.init!.image.height],
    [unmasked.job.width, unmasked.job.height],
  );

  const mask = rgbaImage(64, 48, (x) => [0, 0, 0, x < 32 ? 0 : 255]);
  const masked = await plan(editRequest(image, mask), info, { folder: '/m' });
  assert.equal(masked.job.init!.strength, 1);
  assert.equal(masked.mask!.length, 64 * 48);
  assert.equal(masked.mask![0], 1);
  assert.equal(masked.mask![63], 0);
  await assert.rejects(plan(editRequest(image, mask), { ...info, canEdit: false }, { folder: '/m' }), /no vae_encoder/);
});
