// The tiny SD folders load in onnxruntime-node with the I/O contract of real exports
// (docs/diffusion.md, "Exporter generations") and behave like models: right shapes, finite values, outputs that move
// with every input. Each folder is built once; all runs use batch 2 and 64×64 latents (512 px).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import ort from 'onnxruntime-node';

import {
  fromFloat16Array,
  fromFloat16Bits,
  toFloat16Array,
  toFloat16Bits,
} from '../../src/engines/diffusion/float16.ts';
import { parseSchedulerConfig } from '../../src/engines/diffusion/schedulers/config.ts';
import { loadClipTokenizer } from '../../src/engines/diffusion/tokenizer/index.ts';
import { SCHEDULER_PRESETS, type TinyModelOptions, writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';

const root = await mkdtemp(join(tmpdir(), 'easel-model-builder-'));
after(() => rm(root, { recursive: true, force: true }));
const build = (name: string, options: TinyModelOptions) => writeTinyModel(join(root, name), options);

// The exporter generations of docs/diffusion.md, plus the two layouts that change how weights are stored.
const legacy = await build('legacy', {}); // diffusers script: int32 ids, float [steps] timestep
const optimum = await build('optimum', {
  idsType: 'int64',
  timestep: 'float-scalar',
  latentParameters: true,
  symbolicChannels: true,
  padToken: '!',
});
const ortWeb = await build('ort-web', { timestep: 'int64-vector', fp16: true }); // schmuell/sd-turbo-ort-web
const fp16Scalar = await build('fp16-scalar', { idsType: 'int64', timestep: 'float-scalar', fp16: true });
const inpaint = await build('inpaint-external', { inpainting: true, externalData: true });

type Part = 'text_encoder' | 'unet' | 'vae_decoder' | 'vae_encoder';
const open = (folder: string, part: Part) => ort.InferenceSession.create(join(folder, part, 'model.onnx'));

function signature(values: readonly ort.InferenceSession.ValueMetadata[]) {
  return values.map((v) => (v.isTensor ? [v.name, v.type, v.shape] : [v.name, 'non-tensor']));
}

/** A tensor of the type the session asks for, from plain numbers. */
function tensor(type: string, dims: number[], values: ArrayLike<number>): ort.Tensor {
  const floats = Float32Array.from(values);
  if (type === 'float32') return new ort.Tensor('float32', floats, dims);
  if (type === 'float16') return new ort.Tensor('float16', toFloat16Array(floats), dims);
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);
  throw new Error(`no feed for ${type}`);
}

function inputType(session: ort.InferenceSession, name: string): string {
  const meta = session.inputMetadata.find((m) => m.name === name);
  assert.ok(meta?.isTensor, `${name} is a tensor input`);
  return meta.type;
}

/** Output values as numbers whatever the float type (float16 arrives as Uint16Array bits). */
function values(t: ort.Tensor | undefined): Float32Array {
  assert.ok(t);
  if (t.type === 'float16') return fromFloat16Array(t.data as Uint16Array);
  return Float32Array.from(t.data as Float32Array);
}

function pseudoRandom(count: number, seed: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.9);
}

const allFinite = (data: Float32Array) => data.every(Number.isFinite);
const differs = (a: Float32Array, b: Float32Array) => a.some((v, i) => Math.abs(v - b[i]!) > 1e-3);

async function runUnet(folder: string, options: { timestep: number; context?: number; channels?: number }) {
  const session = await open(folder, 'unet');
  const steps = session.inputMetadata.find((m) => m.name === 'timestep');
  assert.ok(steps?.isTensor);
  const sampleType = inputType(session, 'sample');
  const out = await session.run({
    sample: tensor(
      sampleType,
      [2, options.channels ?? 4, 64, 64],
      pseudoRandom(2 * (options.channels ?? 4) * 64 * 64, 1),
    ),
    timestep: tensor(steps.type, steps.shape.length === 0 ? [] : [1], [options.timestep]),
    encoder_hidden_states: tensor(sampleType, [2, 77, 32], pseudoRandom(2 * 77 * 32, options.context ?? 2)),
  });
  assert.deepEqual(Object.keys(out), ['out_sample']);
  assert.deepEqual(out.out_sample!.dims, [2, 4, 64, 64]);
  return { type: out.out_sample!.type, data: values(out.out_sample), raw: out.out_sample!.data };
}

test('the folder has the diffusers layout with a tokenizer easel loads and a scheduler config easel parses', async () => {
  assert.deepEqual(legacy.files.slice(0, 6), [
    'model_index.json',
    'scheduler/scheduler_config.json',
    'tokenizer/vocab.json',
    'tokenizer/merges.txt',
    'tokenizer/special_tokens_map.json',
    'tokenizer/tokenizer_config.json',
  ]);
  const index = JSON.parse(await readFile(join(legacy.folder, 'model_index.json'), 'utf8'));
  assert.equal(index._class_name, 'OnnxStableDiffusionPipeline');
  assert.deepEqual(index.scheduler, ['diffusers', 'EulerDiscreteScheduler']);
  assert.deepEqual(index.unet, ['diffusers', 'OnnxRuntimeModel']);

  const tokenizer = await loadClipTokenizer(join(legacy.folder, 'tokenizer'));
  assert.deepEqual(
    [tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId],
    [legacy.bosTokenId, legacy.eosTokenId, legacy.eosTokenId],
  );
  assert.deepEqual([legacy.bosTokenId, legacy.eosTokenId, legacy.vocabSize], [530, 531, 532]);
  const ids = tokenizer.encode('a photo of the cat').inputIds;
  assert.equal(ids.length, 77);
  assert.equal(ids.slice(1, 6).filter((id) => id >= 512).length, 4, 'photo, of, the, cat are merged tokens');
  assert.equal((await loadClipTokenizer(join(optimum.folder, 'tokenizer'))).padTokenId, 0, "pad '!' is id 0");

  const scheduler = parseSchedulerConfig(
    JSON.parse(await readFile(join(legacy.folder, 'scheduler/scheduler_config.json'), 'utf8')),
  );
  assert.deepEqual(
    [scheduler._class_name, scheduler.timestep_spacing, scheduler.steps_offset],
    ['EulerDiscreteScheduler', 'trailing', 1],
  );
  for (const preset of Object.values(SCHEDULER_PRESETS))
    assert.equal(parseSchedulerConfig(preset)._class_name, preset._class_name);
});

test('diffusers-script folder declares int32 ids, a float32 [steps] timestep and latent_sample', async () => {
  assert.deepEqual(signature((await open(legacy.folder, 'text_encoder')).inputMetadata), [
    ['input_ids', 'int32', ['batch_size', 'sequence_length']],
  ]);
  const textOut = (await open(legacy.folder, 'text_encoder')).outputMetadata;
  // ORT's shape inference turns the declared sequence_length into 77 (the position table's length).
  assert.deepEqual(signature(textOut), [
    ['last_hidden_state', 'float32', ['batch_size', 77, 32]],
    ['pooler_output', 'float32', ['batch_size', 32]],
  ]);
  const unet = await open(legacy.folder, 'unet');
  assert.deepEqual(signature(unet.inputMetadata), [
    ['sample', 'float32', ['batch_size', 4, 'height', 'width']],
    ['timestep', 'float32', ['steps']],
    ['encoder_hidden_states', 'float32', ['batch_size', 'sequence_length', 32]],
  ]);
  assert.deepEqual(signature(unet.outputMetadata), [['out_sample', 'float32', ['batch_size', 4, 'height', 'width']]]);
  const decoder = await open(legacy.folder, 'vae_decoder');
  assert.deepEqual(signature(decoder.inputMetadata), [
    ['latent_sample', 'float32', ['batch_size', 4, 'height_latent', 'width_latent']],
  ]);
  assert.deepEqual(signature(decoder.outputMetadata), [['sample', 'float32', ['batch_size', 3, 'height', 'width']]]);
  const encoder = await open(legacy.folder, 'vae_encoder');
  assert.deepEqual(signature(encoder.inputMetadata), [['sample', 'float32', ['batch_size', 3, 'height', 'width']]]);
  assert.deepEqual(signature(encoder.outputMetadata), [
    ['latent_sample', 'float32', ['batch_size', 4, 'height_latent', 'width_latent']],
  ]);
});

test('optimum-style folder declares int64 ids, a float scalar timestep, named channels and latent_parameters', async () => {
  assert.deepEqual(signature((await open(optimum.folder, 'text_encoder')).inputMetadata), [
    ['input_ids', 'int64', ['batch_size', 'sequence_length']],
  ]);
  assert.deepEqual(signature((await open(optimum.folder, 'unet')).inputMetadata).slice(0, 2), [
    ['sample', 'float32', ['batch_size', 'num_channels', 'height', 'width']],
    ['timestep', 'float32', []],
  ]);
  assert.deepEqual(signature((await open(optimum.folder, 'vae_decoder')).inputMetadata), [
    ['latent_sample', 'float32', ['batch_size', 'num_channels_latent', 'height_latent', 'width_latent']],
  ]);
  const encoder = await open(optimum.folder, 'vae_encoder');
  assert.deepEqual(signature(encoder.outputMetadata), [
    ['latent_parameters', 'float32', ['batch_size', 8, 'height_latent', 'width_latent']],
  ]);
  const out = await encoder.run({ sample: tensor('float32', [2, 3, 512, 512], pseudoRandom(2 * 3 * 512 * 512, 3)) });
  assert.deepEqual(out.latent_parameters!.dims, [2, 8, 64, 64]);
});

test('text encoder maps batch-2 token ids to finite [2,77,32] and [2,32] outputs that change with the ids', async () => {
  for (const folder of [legacy, optimum, fp16Scalar]) {
    const session = await open(folder.folder, 'text_encoder');
    const tokenizer = await loadClipTokenizer(join(folder.folder, 'tokenizer'));
    const ids = [...tokenizer.encode('a photo of a cat').inputIds, ...tokenizer.encode('a dog').inputIds];
    const out = await session.run({ input_ids: tensor(inputType(session, 'input_ids'), [2, 77], ids) });
    assert.deepEqual(
      [out.last_hidden_state!.dims, out.pooler_output!.dims],
      [
        [2, 77, 32],
        [2, 32],
      ],
    );
    const hidden = values(out.last_hidden_state);
    assert.ok(allFinite(hidden) && allFinite(values(out.pooler_output)));
    const [first, second] = [hidden.subarray(0, 77 * 32), hidden.subarray(77 * 32)];
    assert.ok(differs(first, second), `${folder.folder}: different prompts give different hidden states`);
  }
});

test('UNet returns finite [2,4,64,64] for every timestep form, and timestep and hidden states both change it', async () => {
  for (const folder of [legacy, optimum, ortWeb, fp16Scalar]) {
    const base = await runUnet(folder.folder, { timestep: 999 });
    assert.ok(allFinite(base.data), folder.folder);
    assert.ok(
      differs(base.data, (await runUnet(folder.folder, { timestep: 500 })).data),
      `${folder.folder}: timestep matters`,
    );
    assert.ok(
      differs(base.data, (await runUnet(folder.folder, { timestep: 999, context: 9 })).data),
      `${folder.folder}: context matters`,
    );
  }
});

test('VAE decoder turns [2,4,64,64] latents into a finite [2,3,512,512] image within (-1, 1)', async () => {
  const session = await open(legacy.folder, 'vae_decoder');
  const out = await session.run({ latent_sample: tensor('float32', [2, 4, 64, 64], pseudoRandom(2 * 4 * 64 * 64, 4)) });
  assert.deepEqual(out.sample!.dims, [2, 3, 512, 512]);
  assert.ok(values(out.sample).every((v) => v > -1 && v < 1));
});

test('VAE encoder turns a [2,3,512,512] image into [2,4,64,64] latent_sample', async () => {
  const session = await open(legacy.folder, 'vae_encoder');
  const out = await session.run({ sample: tensor('float32', [2, 3, 512, 512], pseudoRandom(2 * 3 * 512 * 512, 5)) });
  assert.deepEqual(out.latent_sample!.dims, [2, 4, 64, 64]);
  assert.ok(allFinite(values(out.latent_sample)));
});

test('inpainting UNet with external weights loads by path, takes 9 channels and refuses 4', async () => {
  const names = await readdir(join(inpaint.folder, 'unet'));
  assert.deepEqual(names.sort(), ['config.json', 'model.onnx', 'model.onnx_data']);
  const [graph, weights] = await Promise.all(
    ['model.onnx', 'model.onnx_data'].map((f) => stat(join(inpaint.folder, 'unet', f))),
  );
  assert.ok(weights!.size > graph!.size, 'the weights live in model.onnx_data');
  const index = JSON.parse(await readFile(join(inpaint.folder, 'model_index.json'), 'utf8'));
  assert.equal(index._class_name, 'OnnxStableDiffusionInpaintPipeline');
  assert.ok(allFinite((await runUnet(inpaint.folder, { timestep: 999, channels: 9 })).data));
  await assert.rejects(runUnet(inpaint.folder, { timestep: 999, channels: 4 }));
});

test('fp16 folder takes and returns float16 tensors as Uint16Array, with an int64 or float16 timestep', async () => {
  const unet = await open(ortWeb.folder, 'unet');
  assert.deepEqual(
    signature(unet.inputMetadata).map(([, type]) => type),
    ['float16', 'int64', 'float16'],
  );
  assert.equal(inputType(await open(fp16Scalar.folder, 'unet'), 'timestep'), 'float16');
  const out = await runUnet(ortWeb.folder, { timestep: 999 });
  assert.equal(out.type, 'float16');
  assert.ok(out.raw instanceof Uint16Array);
  const decoder = await open(ortWeb.folder, 'vae_decoder');
  const image = await decoder.run({
    latent_sample: tensor('float16', [2, 4, 64, 64], pseudoRandom(2 * 4 * 64 * 64, 6)),
  });
  assert.ok(image.sample!.data instanceof Uint16Array);
  assert.deepEqual(image.sample!.dims, [2, 3, 512, 512]);
});

test('the same seed writes byte-identical files and another seed other weights', async () => {
  const options: TinyModelOptions = { inpainting: true, externalData: true, seed: 42 };
  const [a, b, c] = await Promise.all([
    build('seed-a', options),
    build('seed-b', options),
    build('seed-c', { ...options, seed: 43 }),
  ]);
  for (const file of a.files) {
    const [bytesA, bytesB] = await Promise.all([readFile(join(a.folder, file)), readFile(join(b.folder, file))]);
    assert.ok(bytesA.equals(bytesB), `${file} is identical`);
  }
  const unet = async (info: { folder: string }) => readFile(join(info.folder, 'unet/model.onnx_data'));
  assert.ok(!(await unet(a)).equals(await unet(c)));
});

test('float16 conversion rounds to nearest even and keeps subnormals, infinities and NaN', () => {
  assert.deepEqual(
    [1, -2, 0.5, 65504, 1e6, 2 ** -24, 2 ** -26].map(toFloat16Bits),
    [0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0x0001, 0x0000],
  );
  assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00, 'a tie rounds to the even mantissa');
  assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.deepEqual([0x3555, 0x0001, 0xfc00].map(fromFloat16Bits), [0.333251953125, 2 ** -24, -Infinity]);
  assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))));
});

test('SDXL and LCM folders: the same seed writes byte-identical files and another seed other weights', async () => {
  const cases: TinyModelOptions[] = [
    { family: 'sdxl', seed: 42 },
    { family: 'sdxl', inpainting: true, fp16: true, externalData: true, seed: 42 },
    { family: 'lcm', idsType: 'int64', timestep: 'float-scalar', seed: 42 },
  ];
  for (const [i, options] of cases.entries()) {
    const [a, b, c] = await Promise.all([
      build(`family-${i}-a`, options),
      build(`family-${i}-b`, options),
      build(`family-${i}-c`, { ...options, seed: 43 }),
    ]);
    assert.deepEqual(a.files, b.files);
    for (const file of a.files) {
      const [bytesA, bytesB] = await Promise.all([readFile(join(a.folder, file)), readFile(join(b.folder, file))]);
      assert.ok(bytesA.equals(bytesB), `${options.family} ${file} is identical`);
    }
    const part = options.family === 'sdxl' ? 'text_encoder_2/model.onnx' : 'unet/model.onnx';
    const [partA, partC] = await Promise.all([readFile(join(a.folder, part)), readFile(join(c.folder, part))]);
    assert.ok(!partA.equals(partC), `${options.family}: seed 43 changes ${part}`);
  }
});

test('an SDXL folder adds tokenizer_2 (pad "!") and text_encoder_2 with its config; vaeScalingFactor reaches the VAE config', async () => {
  const xl = await build('sdxl-layout', { family: 'sdxl', vaeScalingFactor: 0.5 });
  for (const file of [
    'tokenizer_2/vocab.json',
    'tokenizer_2/merges.txt',
    'text_encoder_2/model.onnx',
    'text_encoder_2/config.json',
  ]) {
    assert.ok(xl.files.includes(file), file);
  }
  const read = async (file: string) => JSON.parse(await readFile(join(xl.folder, file), 'utf8'));
  assert.equal((await read('tokenizer_2/special_tokens_map.json')).pad_token, '!');
  assert.equal((await read('tokenizer/special_tokens_map.json')).pad_token, '<|endoftext|>');
  const config2 = await read('text_encoder_2/config.json');
  assert.deepEqual(
    [config2._class_name, config2.hidden_size, config2.projection_dim],
    ['CLIPTextModelWithProjection', 48, 48],
  );
  assert.deepEqual(
    [(await read('vae_decoder/config.json')).scaling_factor, (await read('vae_encoder/config.json')).scaling_factor],
    [0.5, 0.5],
  );
  assert.equal((await read('unet/config.json')).sample_size, 128);
  assert.deepEqual([xl.crossAttentionDim, xl.hiddenSize2, xl.projectionDim], [80, 48, 48]);
});

test('options that make no sense for a family are refused, naming the option', async () => {
  await assert.rejects(
    build('bad-1', { family: 'lcm', inpainting: true }),
    /inpainting is not available for family lcm/,
  );
  await assert.rejects(build('bad-2', { hiddenSize2: 64 }), /hiddenSize2 is for family sdxl only/);
  await assert.rejects(build('bad-3', { family: 'lcm', projectionDim: 64 }), /projectionDim is for family sdxl only/);
  await assert.rejects(build('bad-4', { timeCondProjDim: 8 }), /timeCondProjDim is for family lcm or sdxl only/);
  await assert.rejects(build('bad-5', { family: 'sd3' as never }), /family must be one of sd, sdxl, lcm/);
});
