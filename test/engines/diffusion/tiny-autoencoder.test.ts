// The tiny autoencoder of a model folder (vae_tiny_decoder/, vae_tiny_encoder/): found and checked at
// load (a part with the wrong signature is refused naming its file), chosen per job for decoding and
// encoding, and used for previews, which decode only when asked and between steps.
import assert from 'node:assert/strict';
import { copyFile, cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import ort from 'onnxruntime-node';

import type { RawImage } from '../../../src/contract/request.ts';
import {
  inspectModelFolder,
  type LoadedModel,
  loadModel,
  ModelFolderError,
} from '../../../src/engines/diffusion/model/index.ts';
import { decodeImage } from '../../../src/engines/diffusion/pipeline/autoencoder.ts';
import { PipelineInputError, type PipelineJob, runPipeline } from '../../../src/engines/diffusion/pipeline/index.ts';
import { RunTimer } from '../../../src/engines/diffusion/pipeline/timer.ts';
import { writeTinyModel } from '../../../tools/model-builder/tiny-sd.ts';
import { tinyModels } from '../../helpers/tiny-models.ts';

const tiny = await tinyModels('easel-tiny-autoencoder-');

/** Records, in order, which part each session run was for. */
function spy(model: LoadedModel): string[] {
  const calls: string[] = [];
  for (const part of ['unet', 'vaeDecoder', 'vaeEncoder', 'tinyDecoder', 'tinyEncoder'] as const) {
    const session = model.sessions[part];
    if (!session) continue;
    const run = session.run.bind(session);
    const wrapped = Object.create(session) as ort.InferenceSession;
    wrapped.run = ((feeds: Record<string, ort.Tensor>) => {
      calls.push(part);
      return run(feeds);
    }) as ort.InferenceSession['run'];
    model.sessions[part] = wrapped;
  }
  return calls;
}

const job = (over: Partial<PipelineJob> = {}): PipelineJob => ({
  prompt: 'a photo of a cat',
  n: 1,
  width: 64,
  height: 64,
  steps: 2,
  guidanceScale: 0,
  seed: 3,
  ...over,
});

function photo(width: number, height: number): RawImage {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) % 256;
  return { width, height, channels: 3, data };
}

const withTiny = await tiny.load('with-tiny', { tinyAutoencoder: 'narrow' });
const plain = await tiny.load('plain');

test('a folder with vae_tiny_decoder/ and vae_tiny_encoder/ loads both with the optimum contract and scaling factor 1', async () => {
  const folder = await inspectModelFolder(join(tiny.root, 'with-tiny'));
  assert.equal(folder.parts.tinyDecoder, join(tiny.root, 'with-tiny', 'vae_tiny_decoder/model.onnx'));
  assert.equal(folder.parts.tinyEncoder, join(tiny.root, 'with-tiny', 'vae_tiny_encoder/model.onnx'));
  assert.equal(folder.tinyScalingFactor, 1);
  assert.deepEqual(withTiny.contracts.tinyDecoder, {
    input: 'latent_sample',
    inputType: 'float32',
    output: 'sample',
    outputType: 'float32',
  });
  assert.deepEqual(withTiny.contracts.tinyEncoder, {
    input: 'sample',
    inputType: 'float32',
    output: 'latent_sample',
    outputKind: 'latent_sample',
    outputType: 'float32',
  });
  assert.equal(plain.sessions.tinyDecoder, undefined);
  assert.equal((await inspectModelFolder(join(tiny.root, 'plain'))).parts.tinyDecoder, undefined);
});

test('a tiny part whose signature does not fit is refused, naming the file and the tensor', async () => {
  const source = join(tiny.root, 'with-tiny');
  const wrongDecoder = join(tiny.root, 'wrong-decoder');
  await cp(source, wrongDecoder, { recursive: true });
  await copyFile(join(source, 'vae_encoder/model.onnx'), join(wrongDecoder, 'vae_tiny_decoder/model.onnx'));
  await assert.rejects(loadModel(wrongDecoder, { intraOpNumThreads: 1 }), (error: unknown) => {
    assert.ok(error instanceof ModelFolderError);
    assert.match(error.message, /vae_tiny_decoder\/model\.onnx: has no input 'latent_sample' \(inputs: sample\)/);
    return true;
  });
  const wrongEncoder = join(tiny.root, 'wrong-encoder');
  await cp(source, wrongEncoder, { recursive: true });
  await copyFile(join(source, 'vae_decoder/model.onnx'), join(wrongEncoder, 'vae_tiny_encoder/model.onnx'));
  await assert.rejects(
    loadModel(wrongEncoder, { intraOpNumThreads: 1 }),
    /vae_tiny_encoder\/model\.onnx: has no input 'sample'/,
  );
});

test('autoencoder "tiny" decodes with the tiny decoder; its [-1, 1] output becomes RGB exactly as the VAE\'s does', async () => {
  const calls = spy(withTiny);
  const result = await runPipeline(withTiny, job({ n: 2, autoencoder: 'tiny' }));
  assert.deepEqual(calls, ['unet', 'unet', 'tinyDecoder', 'tinyDecoder']);
  assert.deepEqual(Object.keys(result.timings.runs).sort(), ['text_encoder', 'unet', 'vae_tiny_decoder']);
  for (const image of result.images) assert.deepEqual([image.width, image.height, image.channels], [64, 64, 3]);

  // The same latents through the session by hand: (x + 1)·127.5, clamped to 0…255.
  const latents = new Float32Array(4 * 8 * 8).map((_, i) => Math.sin(i) * 2);
  const out = await withTiny.sessions.tinyDecoder!.run({
    latent_sample: new ort.Tensor('float32', latents, [1, 4, 8, 8]),
  });
  const values = out.sample!.data as Float32Array;
  assert.deepEqual(out.sample!.dims, [1, 3, 64, 64]);
  assert.ok(
    values.some((v) => v < -1 || v > 1),
    'random weights reach past [-1, 1], so the clamp is exercised',
  );
  const image = await decodeImage(withTiny, new RunTimer(), 'tiny', latents, 0, { width: 64, height: 64 });
  const plane = 64 * 64;
  for (const i of [0, 1, 777, plane - 1]) {
    for (let c = 0; c < 3; c++) {
      const expected = Math.min(255, Math.max(0, Math.round((values[c * plane + i]! + 1) * 127.5)));
      assert.ok(Math.abs(image.data[i * 3 + c]! - expected) <= 1, `pixel ${i} channel ${c}`);
    }
  }
});

test('autoencoder "tiny" encodes edits with the tiny encoder, or with the VAE encoder when the folder has no tiny one', async () => {
  const calls = spy(withTiny);
  await runPipeline(withTiny, job({ autoencoder: 'tiny', init: { image: photo(64, 64), strength: 0.5 } }));
  assert.deepEqual(calls, ['tinyEncoder', 'unet', 'tinyDecoder']);

  await writeTinyModel(join(tiny.root, 'decoder-only'), { tinyAutoencoder: 'narrow' });
  await rm(join(tiny.root, 'decoder-only', 'vae_tiny_encoder'), { recursive: true });
  const decoderOnly = await loadModel(join(tiny.root, 'decoder-only'), { intraOpNumThreads: 1 });
  try {
    const only = spy(decoderOnly);
    await runPipeline(decoderOnly, job({ autoencoder: 'tiny', init: { image: photo(64, 64), strength: 0.5 } }));
    assert.deepEqual(only, ['vaeEncoder', 'unet', 'tinyDecoder']);
  } finally {
    await decoderOnly.release();
  }
});

test('autoencoder "tiny" on a model without a tiny decoder is an input error naming the file', async () => {
  await assert.rejects(runPipeline(plain, job({ autoencoder: 'tiny' })), (error: unknown) => {
    assert.ok(error instanceof PipelineInputError);
    assert.match(error.message, /vae_tiny_decoder\/model\.onnx/);
    return true;
  });
});

test('previews: the tiny decoder at full size, only at the steps that ask, between that step and the next', async () => {
  const calls = spy(withTiny);
  const seen: Array<[number, number]> = [];
  const result = await runPipeline(withTiny, job({ n: 2, steps: 3 }), {
    async onStep(step, _total, preview) {
      if (step === 2) return; // a step whose preview is not wanted costs nothing
      const images = await preview();
      seen.push([step, images.length]);
      for (const image of images) assert.deepEqual([image.width, image.height, image.channels], [64, 64, 3]);
    },
  });
  assert.deepEqual(seen, [
    [1, 2],
    [3, 2],
  ]);
  assert.deepEqual(calls, [
    'unet',
    'tinyDecoder',
    'tinyDecoder',
    'unet',
    'unet',
    'tinyDecoder',
    'tinyDecoder',
    'vaeDecoder',
    'vaeDecoder',
  ]);
  assert.equal(result.timings.runs.preview?.length, 4);
  assert.equal(
    result.timings.runs.vae_decoder?.length,
    2,
    'the final images still come from the VAE (autoencoder "full")',
  );
});

test('previews without a tiny decoder are the linear latent preview at latent size, with no model run', async () => {
  const calls = spy(plain);
  const sizes: number[][] = [];
  const result = await runPipeline(plain, job({ steps: 2 }), {
    async onStep(_step, _total, preview) {
      sizes.push((await preview()).map((p) => p.width));
    },
  });
  assert.deepEqual(sizes, [[8], [8]]);
  assert.deepEqual(calls, ['unet', 'unet', 'vaeDecoder']);
  assert.equal(result.timings.runs.preview, undefined);
});
