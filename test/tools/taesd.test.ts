// The tiny autoencoder of the model builder has TAESD's exact architecture (the parameter counts of
// diffusers' AutoencoderTiny) and runs in onnxruntime with the optimum I/O contract: latent_sample →
// sample ×8, sample → latent_sample ÷8, with DecoderTiny's tanh soft clamp in front.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import ort from 'onnxruntime-node';

import { writeArchitectureModel } from '../../tools/model-builder/architectures.ts';
import { Net } from '../../tools/model-builder/layers.ts';
import {
  buildTinyDecoder,
  buildTinyEncoder,
  countTinyAutoencoderParameters,
  TAESD,
  TAESD_NARROW,
  writeTinyAutoencoder,
} from '../../tools/model-builder/taesd.ts';

const root = await mkdtemp(join(tmpdir(), 'easel-taesd-'));
after(() => rm(root, { recursive: true, force: true }));

test('the real-size tiny decoder has exactly 1,222,531 parameters and the encoder 1,222,532', () => {
  // Decoder: conv 4→64 (2,368) + 10 blocks × 3 convs 64→64 (1,107,840) + 3 bias-free upsample convs
  // (110,592) + conv 64→3 (1,731). Encoder: conv 3→64 (1,792) + 10 blocks + 3 bias-free stride-2
  // convs + conv 64→4 (2,308).
  assert.deepEqual(countTinyAutoencoderParameters(TAESD), { decoder: 1_222_531, encoder: 1_222_532 });
  assert.deepEqual(countTinyAutoencoderParameters(TAESD_NARROW), { decoder: 19_763, encoder: 19_764 });
});

test('the bias-free convs are the three after each upsample (decoder) and the three stride-2 convs (encoder)', () => {
  const biasFree = (build: (net: Net) => void) => {
    const net = new Net('count', { float: 'float32', weights: null, external: false });
    build(net);
    const names = new Set(net.g.initializerInfo().map((i) => i.name));
    return [...names].filter((n) => n.endsWith('.weight') && !names.has(n.replace(/weight$/, 'bias'))).sort();
  };
  assert.deepEqual(
    biasFree((net) => buildTinyDecoder(net, TAESD)),
    ['decoder.layers.11.weight', 'decoder.layers.16.weight', 'decoder.layers.6.weight'],
  );
  assert.deepEqual(
    biasFree((net) => buildTinyEncoder(net, TAESD)),
    ['encoder.layers.10.weight', 'encoder.layers.2.weight', 'encoder.layers.6.weight'],
  );
});

test('the real-size parts run: 4×8×8 latents decode to a finite 3×64×64 image and encode back to 4×8×8', async () => {
  const folder = join(root, 'real');
  const info = await writeTinyAutoencoder(folder, { seed: 3 });
  assert.deepEqual(info.files, [
    'vae_tiny_decoder/model.onnx',
    'vae_tiny_decoder/config.json',
    'vae_tiny_encoder/model.onnx',
    'vae_tiny_encoder/config.json',
  ]);
  assert.deepEqual(info.parameters, { decoder: 1_222_531, encoder: 1_222_532 });
  const config = JSON.parse(await readFile(join(folder, 'vae_tiny_decoder/config.json'), 'utf8'));
  assert.equal(config._class_name, 'AutoencoderTiny');
  assert.equal(config.scaling_factor, 1);
  const decoder = await ort.InferenceSession.create(join(folder, 'vae_tiny_decoder/model.onnx'), {
    intraOpNumThreads: 1,
  });
  const encoder = await ort.InferenceSession.create(join(folder, 'vae_tiny_encoder/model.onnx'), {
    intraOpNumThreads: 1,
  });
  try {
    assert.deepEqual(decoder.inputNames, ['latent_sample']);
    assert.deepEqual(decoder.outputNames, ['sample']);
    assert.deepEqual(encoder.inputNames, ['sample']);
    assert.deepEqual(encoder.outputNames, ['latent_sample']);
    const image = (await decoder.run({ latent_sample: new ort.Tensor('float32', ramp(4 * 8 * 8, 2), [1, 4, 8, 8]) }))
      .sample!;
    assert.deepEqual(image.dims, [1, 3, 64, 64]);
    assert.ok((image.data as Float32Array).every(Number.isFinite));
    const latents = (await encoder.run({ sample: image })).latent_sample!;
    assert.deepEqual(latents.dims, [1, 4, 8, 8]);
    assert.ok((latents.data as Float32Array).every(Number.isFinite));
  } finally {
    await decoder.release();
    await encoder.release();
  }
});

test('the decoder soft-clamps its input: latents of ±1,000 and ±10,000 decode to the same image (3·tanh(x/3) = ±3)', async () => {
  const folder = join(root, 'narrow');
  await writeTinyAutoencoder(folder, { config: TAESD_NARROW, seed: 1 });
  const decoder = await ort.InferenceSession.create(join(folder, 'vae_tiny_decoder/model.onnx'), {
    intraOpNumThreads: 1,
  });
  try {
    const signs = ramp(4 * 4 * 4, 1).map((v) => (v >= 0 ? 1 : -1));
    const decode = async (scale: number) =>
      (
        await decoder.run({
          latent_sample: new ort.Tensor(
            'float32',
            signs.map((s) => s * scale),
            [1, 4, 4, 4],
          ),
        })
      ).sample!.data as Float32Array;
    const a = await decode(1_000);
    assert.deepEqual(Array.from(await decode(10_000)), Array.from(a));
    assert.notDeepEqual(Array.from(await decode(0.5)), Array.from(a));
  } finally {
    await decoder.release();
  }
});

test('writeArchitectureModel --tiny-autoencoder adds the width-8 variant to the small preset', async () => {
  const info = await writeArchitectureModel(join(root, 'small'), 'small', { tinyAutoencoder: true });
  assert.deepEqual(info.tinyAutoencoder?.parameters, { decoder: 19_763, encoder: 19_764 });
  assert.ok(info.files.includes('vae_tiny_decoder/model.onnx') && info.files.includes('vae_tiny_encoder/model.onnx'));
});

/** Deterministic values in about [-scale, scale]. */
function ramp(count: number, scale: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 1.7 + 0.3) * scale);
}
