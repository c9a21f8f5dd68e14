// inspectModelFolder: family detection from model_index.json, part folders, scheduler and configs;
// every missing or broken part reported at once, by name.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { inspectModelFolder, loadModel, ModelFolderError } from '../../../src/engines/diffusion/model/index.ts';
import { writeTinyModel } from '../../../tools/model-builder/tiny-sd.ts';

const root = await mkdtemp(join(tmpdir(), 'easel-model-folder-'));
after(() => rm(root, { recursive: true, force: true }));
const base = join(root, 'base');
await writeTinyModel(base, {});
let copies = 0;
/** A fresh copy of the tiny folder to break. */
async function copy(): Promise<string> {
  const dir = join(root, `copy-${copies++}`);
  await cp(base, dir, { recursive: true });
  return dir;
}
const editJson = async (path: string, edit: (json: Record<string, unknown>) => void) => {
  const json = JSON.parse(await readFile(path, 'utf8'));
  edit(json);
  await writeFile(path, JSON.stringify(json));
};
async function rejects(promise: Promise<unknown>): Promise<ModelFolderError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ModelFolderError, `expected ModelFolderError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ModelFolderError');
}

test('a complete tiny folder: parts, scheduler, scale factor and resolution from the configs', async () => {
  const folder = await inspectModelFolder(base);
  assert.equal(folder.pipelineClass, 'OnnxStableDiffusionPipeline');
  assert.equal(folder.family, 'sd1');
  assert.equal(folder.inpainting, false);
  assert.equal(folder.parts.unet, join(base, 'unet/model.onnx'));
  assert.equal(folder.parts.tokenizer, join(base, 'tokenizer'));
  assert.equal(folder.parts.vaeEncoder, join(base, 'vae_encoder/model.onnx'));
  assert.equal(folder.parts.textEncoder2, undefined);
  assert.equal(folder.schedulerConfig._class_name, 'EulerDiscreteScheduler');
  assert.equal(folder.vaeScaleFactor, 8); // four VAE blocks
  assert.equal(folder.vaeScalingFactor, 0.18215); // from vae_decoder/config.json
  assert.equal(folder.nativeResolution, 512); // sample_size 64 × 8
});

test('family: SD 2 by pad token or text width, LCM by scheduler or pipeline, SDXL by its second encoder', async () => {
  const sd2 = join(root, 'sd2');
  await writeTinyModel(sd2, { padToken: '!' });
  assert.equal((await inspectModelFolder(sd2)).family, 'sd2');

  const wide = await copy();
  await editJson(join(wide, 'unet/config.json'), (j) => {
    j.cross_attention_dim = 1024;
  });
  assert.equal((await inspectModelFolder(wide)).family, 'sd2');
  await editJson(join(wide, 'unet/config.json'), (j) => {
    j.cross_attention_dim = 768;
    j.sample_size = 96;
  });
  const sd1 = await inspectModelFolder(wide);
  assert.equal(sd1.family, 'sd1');
  assert.equal(sd1.nativeResolution, 768);

  const lcm = join(root, 'lcm');
  await writeTinyModel(lcm, { scheduler: 'lcm' });
  assert.equal((await inspectModelFolder(lcm)).family, 'lcm');
  const lcmPipe = await copy();
  await editJson(join(lcmPipe, 'model_index.json'), (j) => {
    j._class_name = 'LatentConsistencyModelPipeline';
  });
  assert.equal((await inspectModelFolder(lcmPipe)).family, 'lcm');

  const xl = await copy();
  await cp(join(xl, 'text_encoder'), join(xl, 'text_encoder_2'), { recursive: true });
  await cp(join(xl, 'tokenizer'), join(xl, 'tokenizer_2'), { recursive: true });
  await rm(join(xl, 'unet/config.json'));
  const folder = await inspectModelFolder(xl);
  assert.equal(folder.family, 'sdxl');
  assert.equal(folder.nativeResolution, 1024);
  assert.equal(folder.vaeScalingFactor, 0.18215); // the copied config's value wins over the SDXL default
  assert.equal(folder.parts.textEncoder2, join(xl, 'text_encoder_2/model.onnx'));
  assert.equal(folder.parts.tokenizer2, join(xl, 'tokenizer_2'));
  // An SDXL UNet without text_embeds/time_ids contradicts the folder.
  const error = await rejects(loadModel(folder));
  assert.match(error.message, /unet\/model\.onnx: has no input 'text_embeds'/);
  assert.match(error.message, /unet\/model\.onnx: has no input 'time_ids'/);
});

test('SDXL by class name alone: the missing _2 parts are listed', async () => {
  const dir = await copy();
  await editJson(join(dir, 'model_index.json'), (j) => {
    j._class_name = 'ORTStableDiffusionXLPipeline';
  });
  const error = await rejects(inspectModelFolder(dir));
  assert.deepEqual(error.problems, [
    'tokenizer_2/vocab.json is missing',
    'tokenizer_2/merges.txt is missing',
    'text_encoder_2/model.onnx is missing',
  ]);
});

test('every missing part is listed in one error', async () => {
  const dir = await copy();
  for (const file of [
    'unet/model.onnx',
    'text_encoder/model.onnx',
    'vae_decoder/model.onnx',
    'scheduler/scheduler_config.json',
    'tokenizer/merges.txt',
  ]) {
    await rm(join(dir, file));
  }
  const error = await rejects(inspectModelFolder(dir));
  assert.deepEqual([...error.problems].sort(), [
    'scheduler/scheduler_config.json is missing',
    'text_encoder/model.onnx is missing',
    'tokenizer/merges.txt is missing',
    'unet/model.onnx is missing',
    'vae_decoder/model.onnx is missing',
  ]);
  assert.match(error.message, /unet\/model\.onnx is missing/);
});

test('vae_encoder is optional, except for an inpainting model', async () => {
  const dir = await copy();
  await rm(join(dir, 'vae_encoder'), { recursive: true });
  assert.equal((await inspectModelFolder(dir)).parts.vaeEncoder, undefined);
  await editJson(join(dir, 'model_index.json'), (j) => {
    j._class_name = 'OnnxStableDiffusionInpaintPipeline';
  });
  const error = await rejects(inspectModelFolder(dir));
  assert.match(error.message, /vae_encoder\/model\.onnx is missing/);
});

test('model_index.json missing or invalid is named', async () => {
  const dir = await copy();
  await writeFile(join(dir, 'model_index.json'), '{"_class_name": ');
  assert.match((await rejects(inspectModelFolder(dir))).message, /model_index\.json is not valid JSON: /);
  await rm(join(dir, 'model_index.json'));
  assert.match((await rejects(inspectModelFolder(dir))).message, /model_index\.json is missing/);
  assert.match((await rejects(inspectModelFolder(join(root, 'nowhere')))).message, /does not exist/);
});

test('a broken scheduler config and a broken part config are named', async () => {
  const dir = await copy();
  await writeFile(join(dir, 'scheduler/scheduler_config.json'), '{"_class_name": "KarrasVeScheduler"}');
  await writeFile(join(dir, 'unet/config.json'), 'nope');
  const error = await rejects(inspectModelFolder(dir));
  assert.equal(error.problems.length, 2);
  assert.match(error.message, /unet\/config\.json is not valid JSON/);
  assert.match(error.message, /scheduler\/scheduler_config\.json: .*_class_name/);
});

test('a corrupt unet/model.onnx is named at load', async () => {
  const dir = await copy();
  await writeFile(join(dir, 'unet/model.onnx'), Buffer.from('this is not a protobuf at all \x00\xff\x13', 'binary'));
  const error = await rejects(loadModel(dir));
  assert.equal(error.problems.length, 1);
  assert.match(error.problems[0]!, /^unet\/model\.onnx could not be loaded: /);
});

test('a missing external data file is named at load', async () => {
  const dir = join(root, 'external');
  await writeTinyModel(dir, { externalData: true });
  await rm(join(dir, 'unet/model.onnx_data'));
  const error = await rejects(loadModel(dir));
  assert.match(error.message, /unet\/model\.onnx could not be loaded/);
});

test('a tokenizer problem surfaces as a ModelFolderError naming the file', async () => {
  const dir = await copy();
  await writeFile(join(dir, 'tokenizer/vocab.json'), '[]');
  const error = await rejects(loadModel(dir));
  assert.match(error.message, /tokenizer\/vocab\.json/);
});
