// The pipelines on tiny random models: what is fed to each part, in which order and shape, and
// that the same job gives the same pixels. The tiny models are not diffusion models, so these
// tests check the plumbing (batching, guidance, strength, masks, progress, cancellation), not beauty.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type ort from 'onnxruntime-node';

import type { RawImage } from '../../../src/contract/request.ts';
import { type LoadedModel, tensorToFloat32 } from '../../../src/engines/diffusion/model/index.ts';
import {
  PipelineAbortedError,
  PipelineInputError,
  type PipelineJob,
  runPipeline,
} from '../../../src/engines/diffusion/pipeline/index.ts';
import { guidanceEmbedding } from '../../../src/engines/diffusion/pipeline/text.ts';
import type { TinyModelOptions } from '../../../tools/model-builder/tiny-sd.ts';
import { tinyModels } from '../../helpers/tiny-models.ts';

const tiny = await tinyModels('easel-pipeline-');

interface Call {
  part: string;
  feeds: Record<string, ort.Tensor>;
}

/** A tiny model whose sessions record every feed they are given. */
async function model(name: string, options: TinyModelOptions = {}): Promise<{ model: LoadedModel; calls: Call[] }> {
  const m = await tiny.load(name, options);
  const calls: Call[] = [];
  for (const part of ['textEncoder', 'textEncoder2', 'unet', 'vaeDecoder', 'vaeEncoder'] as const) {
    const session = m.sessions[part];
    if (!session) continue;
    const run = session.run.bind(session);
    const spy = Object.create(session) as ort.InferenceSession;
    spy.run = ((feeds: Record<string, ort.Tensor>) => {
      calls.push({ part, feeds });
      return run(feeds);
    }) as ort.InferenceSession['run'];
    (m.sessions as unknown as Record<string, ort.InferenceSession>)[part] = spy;
  }
  return { model: m, calls };
}

const job = (over: Partial<PipelineJob> = {}): PipelineJob => ({
  prompt: 'a photo of a cat',
  n: 1,
  width: 64,
  height: 64,
  steps: 2,
  guidanceScale: 0,
  seed: 7,
  ...over,
});
const parts = (calls: Call[]) => calls.map((c) => c.part);
const dims = (calls: Call[], part: string, input: string) =>
  calls.filter((c) => c.part === part).map((c) => c.feeds[input]!.dims.join('x'));

function photo(width: number, height: number): RawImage {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([(i * 7) % 256, (i * 3) % 256, 128, 255], i * 4);
  return { width, height, channels: 4, data };
}

const { model: sd, calls: sdCalls } = await model('sd');

test('text-to-image: one encoder run, one UNet run per step, one decode per image, exact size', async () => {
  sdCalls.length = 0;
  const result = await runPipeline(sd, job({ n: 2, steps: 3 }));
  assert.deepEqual(parts(sdCalls), ['textEncoder', 'unet', 'unet', 'unet', 'vaeDecoder', 'vaeDecoder']);
  assert.deepEqual(dims(sdCalls, 'unet', 'sample'), ['2x4x8x8', '2x4x8x8', '2x4x8x8']);
  assert.deepEqual(dims(sdCalls, 'vaeDecoder', 'latent_sample'), ['1x4x8x8', '1x4x8x8']);
  assert.equal(result.images.length, 2);
  for (const image of result.images)
    assert.deepEqual([image.width, image.height, image.channels, image.data.length], [64, 64, 3, 64 * 64 * 3]);
  assert.notDeepEqual(result.images[0]!.data, result.images[1]!.data, 'each image of a batch has its own noise');
  assert.equal(result.steps, 3);
  assert.equal(result.timings.runs.unet!.length, 3);
  assert.ok(result.timings.totalMs >= result.timings.runs.unet!.reduce((a, b) => a + b, 0));
});

test('the same job gives the same bytes; another seed or prompt gives others; image k of a batch is the image a batch of one gives', async () => {
  const a = await runPipeline(sd, job({ n: 2 }));
  const b = await runPipeline(sd, job({ n: 2 }));
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual((await runPipeline(sd, job({ seed: 8 }))).images[0]!.data, a.images[0]!.data);
  assert.notDeepEqual((await runPipeline(sd, job({ prompt: 'a dog' }))).images[0]!.data, a.images[0]!.data);
  const single = await runPipeline(sd, job({ n: 1 }));
  assert.deepEqual(single.images[0], a.images[0]);
});

test('guidance > 1 batches uncond and cond into one UNet call and changes the result', async () => {
  sdCalls.length = 0;
  const guided = await runPipeline(sd, job({ n: 2, guidanceScale: 7.5, negativePrompt: 'blurry' }));
  assert.deepEqual(parts(sdCalls), ['textEncoder', 'textEncoder', 'unet', 'unet', 'vaeDecoder', 'vaeDecoder']);
  assert.deepEqual(dims(sdCalls, 'unet', 'sample'), ['4x4x8x8', '4x4x8x8']);
  const context = tensorToFloat32(sdCalls.find((c) => c.part === 'unet')!.feeds.encoder_hidden_states!);
  const one = context.length / 4;
  // [uncond, uncond, cond, cond]
  assert.deepEqual(context.subarray(0, one), context.subarray(one, 2 * one));
  assert.deepEqual(context.subarray(2 * one, 3 * one), context.subarray(3 * one));
  assert.notDeepEqual(context.subarray(0, one), context.subarray(2 * one, 3 * one));
  const plain = await runPipeline(sd, job({ n: 2 }));
  assert.notDeepEqual(guided.images[0]!.data, plain.images[0]!.data);
});

test('progress after every step with latent-size previews; an abort stops between steps', async () => {
  const seen: Array<[number, number, number]> = [];
  await runPipeline(sd, job({ n: 2, steps: 3 }), {
    onStep: async (step, total, preview) => {
      const images = await preview();
      seen.push([step, total, images.length]);
      assert.deepEqual([images[0]!.width, images[0]!.height, images[0]!.channels], [8, 8, 3]);
    },
  });
  assert.deepEqual(seen, [
    [1, 3, 2],
    [2, 3, 2],
    [3, 3, 2],
  ]);

  sdCalls.length = 0;
  const controller = new AbortController();
  await assert.rejects(
    runPipeline(sd, job({ steps: 4 }), {
      signal: controller.signal,
      onStep: (step) => void (step === 1 && controller.abort()),
    }),
    PipelineAbortedError,
  );
  assert.deepEqual(parts(sdCalls), ['textEncoder', 'unet']);
});

test('image-to-image: strength decides how many steps run, and at least one always does', async () => {
  const init = photo(64, 64);
  sdCalls.length = 0;
  const half = await runPipeline(sd, job({ steps: 4, init: { image: init, strength: 0.5 } }));
  assert.deepEqual(parts(sdCalls), ['textEncoder', 'vaeEncoder', 'unet', 'unet', 'vaeDecoder']);
  assert.equal(half.steps, 2);
  sdCalls.length = 0;
  const tiny = await runPipeline(sd, job({ steps: 2, init: { image: init, strength: 0.01 } }));
  assert.equal(tiny.steps, 1);
  assert.deepEqual(parts(sdCalls), ['textEncoder', 'vaeEncoder', 'unet', 'vaeDecoder']);
  const full = await runPipeline(sd, job({ steps: 2, init: { image: init, strength: 1 } }));
  assert.equal(full.steps, 2);
  for (const strength of [0, -0.5, 1.5, Number.NaN]) {
    await assert.rejects(runPipeline(sd, job({ init: { image: init, strength } })), PipelineInputError);
  }
  await assert.rejects(runPipeline(sd, job({ init: { image: photo(32, 32), strength: 0.5 } })), /init image is 32x32/);
  await assert.rejects(runPipeline(sd, job({ width: 60 })), /multiple of the VAE scale factor 8/);
});

test('inpainting with a 4-channel UNet blends the known area back after every step', async () => {
  const init = photo(64, 64);
  const mask = new Uint8Array(64 * 64);
  for (let i = 0; i < mask.length; i++) mask[i] = i % 64 < 32 ? 1 : 0; // repaint the left half
  sdCalls.length = 0;
  const result = await runPipeline(sd, job({ steps: 3, init: { image: init, strength: 1, mask } }));
  assert.deepEqual(parts(sdCalls), ['textEncoder', 'vaeEncoder', 'unet', 'unet', 'unet', 'vaeDecoder']);
  // The right half's final latents are the image's own (decoded: the same as decoding the init latents).
  const decoded = tensorToFloat32(sdCalls.at(-1)!.feeds.latent_sample!);
  const encoded = tensorToFloat32(
    (await sd.sessions.vaeEncoder!.run({ sample: sdCalls[1]!.feeds.sample! })).latent_sample!,
  );
  for (let c = 0; c < 4; c++) {
    for (let y = 0; y < 8; y++) {
      for (let x = 4; x < 8; x++) {
        const i = c * 64 + y * 8 + x;
        assert.ok(Math.abs(decoded[i]! - encoded[i]!) < 1e-5, `known latent ${i}`);
      }
    }
  }
  assert.equal(result.images.length, 1);
});

test('inpainting with a 9-channel UNet feeds latents ‖ mask ‖ masked-image latents', async () => {
  const { model: inpaint, calls } = await model('inpaint', { inpainting: true });
  const init = photo(64, 64);
  const mask = new Uint8Array(64 * 64);
  for (let i = 0; i < mask.length; i++) mask[i] = Math.floor(i / 64) < 32 ? 1 : 0; // repaint the top half
  await runPipeline(inpaint, job({ n: 2, guidanceScale: 5, init: { image: init, strength: 1, mask } }));
  assert.deepEqual(parts(calls), [
    'textEncoder',
    'textEncoder',
    'vaeEncoder',
    'unet',
    'unet',
    'vaeDecoder',
    'vaeDecoder',
  ]);
  const masked = tensorToFloat32(calls[2]!.feeds.sample!);
  assert.equal(masked[0], 0, 'the repaint area of the encoder input is blanked');
  assert.notEqual(masked[64 * 63], 0);
  const sample = calls[3]!.feeds.sample!;
  assert.deepEqual(sample.dims, [4, 9, 8, 8]);
  const values = tensorToFloat32(sample);
  const maskChannel = Array.from(values.subarray(4 * 64, 5 * 64));
  assert.deepEqual(
    maskChannel,
    Array.from({ length: 64 }, (_, i) => (i < 32 ? 1 : 0)),
  );
  // Without a mask it repaints everything: all-ones mask, a blank image to start from.
  calls.length = 0;
  await runPipeline(inpaint, job());
  assert.deepEqual(parts(calls), ['textEncoder', 'vaeEncoder', 'unet', 'unet', 'vaeDecoder']);
  assert.ok(Array.from(tensorToFloat32(calls[2]!.feeds.sample!).subarray(4 * 64, 5 * 64)).every((v) => v === 1));
});

test('exporter variants: fp16 tensors, int64 timesteps, scalar timesteps, latent_parameters', async () => {
  for (const [name, options] of [
    ['fp16', { fp16: true }],
    ['int64', { timestep: 'int64-vector', idsType: 'int64' }],
    ['scalar', { timestep: 'float-scalar' }],
    ['params', { latentParameters: true }],
  ] as Array<[string, TinyModelOptions]>) {
    const { model: m } = await model(name, options);
    const a = await runPipeline(m, job({ n: 2, init: { image: photo(64, 64), strength: 0.75 } }));
    const b = await runPipeline(m, job({ n: 2, init: { image: photo(64, 64), strength: 0.75 } }));
    assert.equal(a.images.length, 2, name);
    assert.deepEqual(a.images, b.images, `${name} is deterministic`);
  }
});

test('every scheduler runs the loop: DDIM, Euler ancestral and LCM by override', async () => {
  for (const scheduler of [
    'DDIMScheduler',
    'EulerAncestralDiscreteScheduler',
    'LCMScheduler',
    'PNDMScheduler',
  ] as const) {
    const a = await runPipeline(sd, job({ scheduler, steps: 3 }));
    const b = await runPipeline(sd, job({ scheduler, steps: 3 }));
    assert.deepEqual(a.images, b.images, scheduler);
    if (scheduler === 'PNDMScheduler') assert.match(a.schedulerNote ?? '', /DDIM/);
  }
});

test('LCM guidance embedding: sin half then cos half of (w − 1)·1000 times the frequencies', () => {
  const e = guidanceEmbedding(8.5, 4);
  // half 2: frequencies 1 and exp(−ln 10000) = 1e-4; angles 7500 and 0.75.
  const expected = [
    Math.sin(7500),
    Math.sin(Math.fround(7500 * Math.fround(1e-4))),
    Math.cos(7500),
    Math.cos(Math.fround(7500 * Math.fround(1e-4))),
  ];
  expected.forEach((v, i) => assert.ok(Math.abs(e[i]! - v) < 1e-6, `${i}: ${e[i]} vs ${v}`));
  assert.equal(guidanceEmbedding(3, 5)[4], 0, 'odd sizes are zero-padded');
});

test('SDXL: both encoders concatenated, pooled text_embeds and time_ids fed, zeros as the empty negative prompt', async () => {
  const { model: xl, calls } = await model('sdxl', { family: 'sdxl' });
  await runPipeline(xl, job({ n: 2, guidanceScale: 5, width: 64, height: 128 }));
  assert.deepEqual(parts(calls), ['textEncoder', 'textEncoder2', 'unet', 'unet', 'vaeDecoder', 'vaeDecoder']);
  const unet = calls.find((c) => c.part === 'unet')!.feeds;
  const width = xl.contracts.textEncoder.hiddenSize! + xl.contracts.textEncoder2!.hiddenSize!;
  assert.deepEqual(unet.encoder_hidden_states!.dims, [4, 77, width]);
  assert.deepEqual(unet.text_embeds!.dims, [4, xl.contracts.unet.textEmbeds!.size]);
  assert.deepEqual(Array.from(tensorToFloat32(unet.time_ids!).subarray(0, 6)), [128, 64, 0, 0, 128, 64]);
  const context = tensorToFloat32(unet.encoder_hidden_states!);
  const pooled = tensorToFloat32(unet.text_embeds!);
  assert.ok(
    context.subarray(0, context.length / 2).every((v) => v === 0),
    'uncond hidden states are zeros',
  );
  assert.ok(
    pooled.subarray(0, pooled.length / 2).every((v) => v === 0),
    'uncond text_embeds are zeros',
  );
  assert.ok(context.subarray(context.length / 2).some((v) => v !== 0));
});

test('LCM: guidance goes into timestep_cond, never into a doubled batch', async () => {
  const { model: lcm, calls } = await model('lcm', { family: 'lcm' });
  await runPipeline(lcm, job({ n: 2, steps: 4, guidanceScale: 8.5 }));
  assert.deepEqual(parts(calls), ['textEncoder', 'unet', 'unet', 'unet', 'unet', 'vaeDecoder', 'vaeDecoder']);
  const unet = calls.find((c) => c.part === 'unet')!.feeds;
  assert.deepEqual(unet.sample!.dims, [2, 4, 8, 8]);
  const dim = lcm.contracts.unet.timestepCond!.size!;
  assert.deepEqual(unet.timestep_cond!.dims, [2, dim]);
  assert.deepEqual(
    Array.from(tensorToFloat32(unet.timestep_cond!).subarray(0, dim)),
    Array.from(guidanceEmbedding(8.5, dim)),
  );
});
