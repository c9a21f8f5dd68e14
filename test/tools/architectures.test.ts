// The architecture presets have the real networks' parameter counts (the proof that a benchmark on
// them measures the real compute), and the small preset is a working model: loadModel accepts it and
// each part gives finite outputs of the right shape at 512² (64×64 latents).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import ort from 'onnxruntime-node';

import { type LoadedModel, loadModel } from '../../src/engines/diffusion/model/index.ts';
import { runPipeline } from '../../src/engines/diffusion/pipeline/index.ts';
import {
  type ArchitectureModelInfo,
  countParameters,
  writeArchitectureModel,
} from '../../tools/model-builder/architectures.ts';
import { GraphBuilder } from '../../tools/model-builder/onnx.ts';

const root = await mkdtemp(join(tmpdir(), 'easel-architectures-'));
let small: ArchitectureModelInfo;
let model: LoadedModel;
before(async () => {
  small = await writeArchitectureModel(join(root, 'small'), 'small', { seed: 1 });
  model = await loadModel(small.folder, { intraOpNumThreads: 2 });
});
after(async () => {
  await model?.release();
  await rm(root, { recursive: true, force: true });
});

// Published counts: diffusers UNet2DConditionModel of stable-diffusion-2-1(-base) and -v1-5,
// transformers CLIPTextModel of openai/clip-vit-large-patch14 and of SD 2.x's text_encoder (OpenCLIP
// ViT-H, 23 layers), AutoencoderKL of both (the encoder part holds quant_conv, the decoder post_quant_conv).
const SD_VAE = { vae_encoder: 34_163_592 + 72, vae_decoder: 49_490_179 + 20, vae: 83_653_863 };

test('sd-turbo has the parameter counts of SD 2.1: UNet 865,910,724, OpenCLIP-H text 340,387,840, VAE 83,653,863', () => {
  assert.deepEqual(countParameters('sd-turbo'), {
    text_encoder: 340_387_840,
    unet: 865_910_724,
    ...SD_VAE,
    total: 340_387_840 + 865_910_724 + 83_653_863,
  });
});

test('sd15 has the parameter counts of SD 1.5: UNet 859,520,964, CLIP ViT-L text 123,060,480, VAE 83,653,863', () => {
  assert.deepEqual(countParameters('sd15'), {
    text_encoder: 123_060_480,
    unet: 859_520_964,
    ...SD_VAE,
    total: 123_060_480 + 859_520_964 + 83_653_863,
  });
});

// SDXL (stabilityai/sdxl-turbo has SDXL base 1.0's architecture): UNet2DConditionModel 2,567,463,684; CLIPTextModel
// (ViT-L/14, as SD 1.5's) 123,060,480; CLIPTextModelWithProjection (OpenCLIP ViT-bigG/14: 32 layers of 1280 with its
// 1280 × 1280 text_projection) 694,659,840; the same AutoencoderKL as SD (only its scaling factor differs).
test('sdxl-turbo has the parameter counts of SDXL: UNet 2,567,463,684, CLIP ViT-L text 123,060,480, OpenCLIP bigG text 694,659,840, VAE 83,653,863', () => {
  assert.deepEqual(countParameters('sdxl-turbo'), {
    text_encoder: 123_060_480,
    text_encoder_2: 694_659_840,
    unet: 2_567_463_684,
    ...SD_VAE,
    total: 123_060_480 + 694_659_840 + 2_567_463_684 + 83_653_863,
  });
});

test('small keeps its counts, and the folder written holds exactly the counted parameters', () => {
  const expected = {
    text_encoder: 139_072,
    unet: 3_277_988,
    vae_decoder: 196_839,
    vae_encoder: 137_544,
    vae: 334_383,
    total: 3_751_443,
  };
  assert.deepEqual(countParameters('small'), expected);
  assert.deepEqual(small.parameters, expected);
});

test('the small folder has the diffusers layout and loads as an SD 2.x model with the diffusers-script contract', async () => {
  assert.deepEqual(small.files, [
    'model_index.json',
    'scheduler/scheduler_config.json',
    'tokenizer/vocab.json',
    'tokenizer/merges.txt',
    'tokenizer/special_tokens_map.json',
    'tokenizer/tokenizer_config.json',
    'text_encoder/model.onnx',
    'unet/model.onnx',
    'vae_decoder/model.onnx',
    'vae_encoder/model.onnx',
    'text_encoder/config.json',
    'unet/config.json',
    'vae_decoder/config.json',
    'vae_encoder/config.json',
  ]);
  assert.equal(model.family, 'sd2');
  assert.equal(model.vaeScaleFactor, 8);
  assert.equal(model.nativeResolution, 512);
  assert.equal(model.schedulerConfig._class_name, 'EulerDiscreteScheduler');
  assert.deepEqual(model.contracts.unet.timestep, { type: 'float32', rank: 1, length: 'one' });
  assert.equal(model.contracts.unet.crossAttentionDim, 64);
  assert.equal(model.contracts.textEncoder.idsType, 'int32');
  assert.equal(model.contracts.vaeEncoder?.outputKind, 'latent_sample');
  const unetConfig = JSON.parse(await readFile(join(small.folder, 'unet/config.json'), 'utf8'));
  assert.deepEqual(unetConfig.down_block_types, [
    'CrossAttnDownBlock2D',
    'CrossAttnDownBlock2D',
    'CrossAttnDownBlock2D',
    'DownBlock2D',
  ]);
  assert.deepEqual(unetConfig.up_block_types, [
    'UpBlock2D',
    'CrossAttnUpBlock2D',
    'CrossAttnUpBlock2D',
    'CrossAttnUpBlock2D',
  ]);
});

/** Deterministic N(0,1)-like values (a sum of three uniforms, scaled). */
function noise(count: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0 || 1;
  const uniform = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  return Float32Array.from({ length: count }, () => (uniform() + uniform() + uniform()) * 2 * scale);
}

function summary(tensor: ort.Tensor | undefined) {
  assert.ok(tensor);
  const data = tensor.data as Float32Array;
  assert.ok(data.every(Number.isFinite), 'every value is finite');
  return { dims: tensor.dims, rms: Math.sqrt(data.reduce((sum, v) => sum + v * v, 0) / data.length) };
}

test('the text encoder gives finite [1, 77, 64] states and a pooled [1, 64] for a tokenized prompt', async () => {
  const ids = model.tokenizer.encode('a photo of a cat').inputIds;
  const out = await model.sessions.textEncoder.run({
    input_ids: new ort.Tensor('int32', Int32Array.from(ids), [1, ids.length]),
  });
  const hidden = summary(out.last_hidden_state);
  assert.deepEqual(hidden.dims, [1, 77, 64]);
  assert.ok(hidden.rms > 0.5 && hidden.rms < 2, `last_hidden_state rms ${hidden.rms}`);
  assert.deepEqual(summary(out.pooler_output).dims, [1, 64]);
});

test('one UNet pass on 64×64 latents gives a finite [1, 4, 64, 64] prediction of O(1) magnitude', async () => {
  const out = await model.sessions.unet.run({
    sample: new ort.Tensor('float32', noise(4 * 64 * 64, 2), [1, 4, 64, 64]),
    timestep: new ort.Tensor('float32', Float32Array.of(999), [1]),
    encoder_hidden_states: new ort.Tensor('float32', noise(77 * 64, 3), [1, 77, 64]),
  });
  const prediction = summary(out.out_sample);
  assert.deepEqual(prediction.dims, [1, 4, 64, 64]);
  assert.ok(prediction.rms > 0.1 && prediction.rms < 10, `out_sample rms ${prediction.rms}`);
});

test('the VAE decodes a 64×64 latent into a finite 3×512×512 image', async () => {
  const out = await model.sessions.vaeDecoder.run({
    latent_sample: new ort.Tensor('float32', noise(4 * 64 * 64, 4, 1 / 0.18215), [1, 4, 64, 64]),
  });
  const image = summary(out.sample);
  assert.deepEqual(image.dims, [1, 3, 512, 512]);
  assert.ok(image.rms > 0.05 && image.rms < 20, `sample rms ${image.rms}`);
});

test('GraphBuilder.write streams the same bytes that encode returns, model and external data', async () => {
  const graph = new GraphBuilder('streamed');
  const x = graph.input('x', 'float32', [3]);
  const a = graph.initializer('a', 'float32', [3], () => Float32Array.of(1, 2, 3), { external: true });
  const b = graph.initializer('b', 'float32', [5], Float32Array.of(1, 2, 3, 4, 5), { external: true });
  const sum = graph.node('Add', [x, a], ['sum']);
  graph.node('ReduceSum', [b], ['total'], { keepdims: 0 });
  graph.node('Add', [sum, 'total'], ['y']);
  graph.output('y', 'float32', [3]);
  const encoded = graph.encode({ externalData: 'model.onnx_data' });
  const path = join(root, 'streamed.onnx');
  const sizes = graph.write(path, { externalData: 'model.onnx_data' });
  assert.deepEqual(new Uint8Array(await readFile(path)), encoded.model);
  assert.deepEqual(new Uint8Array(await readFile(join(root, 'model.onnx_data'))), encoded.data);
  assert.deepEqual(sizes, { modelBytes: encoded.model.length, dataBytes: 64 + 20 });
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(0, 0, 1), [3]) });
  assert.deepEqual(Array.from(out.y!.data as Float32Array), [16, 17, 19]);
  await session.release();
});

test('the same seed writes byte-identical parts and another seed other weights', async () => {
  const again = await writeArchitectureModel(join(root, 'small-again'), 'small', { seed: 1 });
  const other = await writeArchitectureModel(join(root, 'small-other'), 'small', { seed: 2 });
  for (const part of ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']) {
    const bytes = (info: ArchitectureModelInfo) => readFile(join(info.folder, part, 'model.onnx'));
    assert.ok((await bytes(small)).equals(await bytes(again)), `${part} is the same for seed 1`);
    assert.ok(!(await bytes(small)).equals(await bytes(other)), `${part} differs for seed 2`);
  }
});

test('sdxl-small (sdxl-turbo at small widths) loads as an SDXL model with the SDXL contract and generates through the engine', async () => {
  const info = await writeArchitectureModel(join(root, 'sdxl-small'), 'sdxl-small', { seed: 1, tinyAutoencoder: true });
  assert.ok(info.files.includes('text_encoder_2/model.onnx') && info.files.includes('tokenizer_2/vocab.json'));
  assert.deepEqual(info.parameters, countParameters('sdxl-small'));
  const xl = await loadModel(info.folder, { intraOpNumThreads: 2 });
  try {
    assert.equal(xl.family, 'sdxl');
    assert.equal(xl.nativeResolution, 512);
    assert.equal(xl.vaeScalingFactor, 0.13025);
    assert.equal(xl.schedulerConfig._class_name, 'EulerAncestralDiscreteScheduler');
    const { textEncoder, textEncoder2, unet } = xl.contracts;
    // hidden_states.0 (the embeddings) … .L (the last layer); the engine takes the penultimate.
    assert.deepEqual(textEncoder.hiddenStates, ['hidden_states.0', 'hidden_states.1', 'hidden_states.2']);
    assert.equal(textEncoder.pooled, 'pooler_output');
    assert.equal(textEncoder2?.pooled, 'text_embeds');
    assert.equal(textEncoder2?.hiddenStates.length, 4);
    assert.equal(unet.crossAttentionDim, 64 + 96);
    assert.deepEqual(unet.textEmbeds, { name: 'text_embeds', type: 'float32', size: 96 });
    assert.deepEqual(unet.timeIds, { name: 'time_ids', type: 'float32', size: 6 });
    const unetConfig = JSON.parse(await readFile(join(info.folder, 'unet/config.json'), 'utf8'));
    assert.deepEqual(unetConfig.transformer_layers_per_block, [1, 2, 3]);
    assert.equal(unetConfig.projection_class_embeddings_input_dim, 96 + 6 * 16);
    const encoder2Config = JSON.parse(await readFile(join(info.folder, 'text_encoder_2/config.json'), 'utf8'));
    assert.equal(encoder2Config._class_name, 'CLIPTextModelWithProjection');
    assert.equal(encoder2Config.projection_dim, 96);

    for (const autoencoder of ['full', 'tiny'] as const) {
      const result = await runPipeline(xl, {
        prompt: 'a photo of a cat',
        n: 1,
        width: 512,
        height: 512,
        steps: 1,
        guidanceScale: 0,
        seed: 5,
        autoencoder,
      });
      assert.equal(result.images.length, 1);
      const [image] = result.images;
      assert.equal(image!.width, 512);
      assert.equal(image!.height, 512);
      assert.ok(result.timings.runs.text_encoder_2?.length === 1, 'the second encoder ran');
    }
  } finally {
    await xl.release();
  }
});
