// loadModel reads each exporter variant's I/O contract from the sessions (docs/diffusion.md, "Exporter generations"),
// and refuses parts whose metadata contradicts the folder, naming the part and the tensor.
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadModel, ModelFolderError } from '../../../src/engines/diffusion/model/index.ts';
import { type DataType, type Dim, GraphBuilder } from '../../../tools/model-builder/onnx.ts';
import { tinyModels } from '../../helpers/tiny-models.ts';

const { root, load } = await tinyModels('easel-model-sessions-');

test('legacy diffusers script: int32 ids, float [steps] timestep, latent_sample', async () => {
  const m = await load('legacy', {});
  assert.equal(m.family, 'sd1');
  assert.deepEqual(m.contracts.textEncoder, {
    idsName: 'input_ids',
    idsType: 'int32',
    sequenceLength: null,
    lastHiddenState: 'last_hidden_state',
    pooled: 'pooler_output',
    hiddenStates: [],
    outputType: 'float32',
    hiddenSize: 32,
  });
  assert.deepEqual(m.contracts.unet, {
    sampleType: 'float32',
    sampleChannels: 4,
    timestep: { type: 'float32', rank: 1, length: 'one' },
    encoderHiddenStatesType: 'float32',
    crossAttentionDim: 32,
    textEmbeds: null,
    timeIds: null,
    timestepCond: null,
    output: 'out_sample',
    outputType: 'float32',
  });
  assert.deepEqual(m.contracts.vaeDecoder, {
    input: 'latent_sample',
    inputType: 'float32',
    output: 'sample',
    outputType: 'float32',
  });
  assert.deepEqual(m.contracts.vaeEncoder, {
    input: 'sample',
    inputType: 'float32',
    output: 'latent_sample',
    outputKind: 'latent_sample',
    outputType: 'float32',
  });
  assert.equal(m.inpainting, false);
  assert.equal(m.latentChannels, 4);
  assert.equal(m.vaeScaleFactor, 8);
  assert.equal(m.nativeResolution, 512);
  assert.equal(m.schedulerConfig._class_name, 'EulerDiscreteScheduler');
  assert.equal(m.tokenizer.padTokenId, m.tokenizer.eosTokenId);
  assert.equal(m.tokenizer2, undefined);
  assert.equal(m.contracts.textEncoder2, undefined);
});

test('optimum ≥ 1.24: int64 ids, float scalar timestep, latent_parameters, symbolic channels, pad "!"', async () => {
  const m = await load('optimum', {
    idsType: 'int64',
    timestep: 'float-scalar',
    latentParameters: true,
    symbolicChannels: true,
    padToken: '!',
  });
  assert.equal(m.family, 'sd2');
  assert.equal(m.contracts.textEncoder.idsType, 'int64');
  assert.deepEqual(m.contracts.unet.timestep, { type: 'float32', rank: 0, length: 'one' });
  assert.equal(m.contracts.unet.sampleChannels, null);
  assert.equal(m.inpainting, false);
  assert.equal(m.contracts.vaeEncoder?.outputKind, 'latent_parameters');
  assert.equal(m.contracts.vaeEncoder?.output, 'latent_parameters');
  assert.notEqual(m.tokenizer.padTokenId, m.tokenizer.eosTokenId);
  assert.equal(m.tokenizer.padTokenId, 0); // '!' is id 0 in the CLIP byte layout
});

test('optimum 1.14–1.23: int64 [steps] timestep', async () => {
  const m = await load('int64', { timestep: 'int64-vector' });
  assert.deepEqual(m.contracts.unet.timestep, { type: 'int64', rank: 1, length: 'one' });
  assert.equal(m.contracts.textEncoder.idsType, 'int32');
});

test('fp16 export: every float tensor float16, the timestep too', async () => {
  const m = await load('fp16', { fp16: true, idsType: 'int64', timestep: 'float-scalar' });
  const { unet, textEncoder, vaeDecoder, vaeEncoder } = m.contracts;
  assert.equal(textEncoder.outputType, 'float16');
  assert.equal(unet.sampleType, 'float16');
  assert.equal(unet.encoderHiddenStatesType, 'float16');
  assert.deepEqual(unet.timestep, { type: 'float16', rank: 0, length: 'one' });
  assert.equal(unet.outputType, 'float16');
  assert.equal(vaeDecoder.inputType, 'float16');
  assert.equal(vaeEncoder?.outputType, 'float16');
});

test('fp16 with int64 timestep (sd-turbo-ort-web)', async () => {
  const m = await load('ort-web', { fp16: true, timestep: 'int64-vector' });
  assert.deepEqual(m.contracts.unet.timestep, { type: 'int64', rank: 1, length: 'one' });
  assert.equal(m.contracts.unet.sampleType, 'float16');
});

test('inpainting: 9-channel UNet with external weights', async () => {
  const m = await load('inpaint', { inpainting: true, externalData: true });
  assert.equal(m.contracts.unet.sampleChannels, 9);
  assert.equal(m.inpainting, true);
  assert.ok(m.sessions.vaeEncoder);
});

test('symbolic channels fall back to the folder: an inpainting class name makes it inpainting', async () => {
  const m = await load('inpaint-symbolic', { inpainting: true, symbolicChannels: true });
  assert.equal(m.contracts.unet.sampleChannels, null);
  assert.equal(m.inpainting, true);
});

/** A model whose outputs are Identity copies of its first input: only the declared I/O matters here. */
function stub(inputs: Array<[string, DataType, Dim[]]>, outputs: Array<[string, DataType, Dim[]]>): Uint8Array {
  const g = new GraphBuilder('stub');
  for (const [name, type, dims] of inputs) g.input(name, type, dims);
  for (const [name, type, dims] of outputs) {
    g.node('Identity', [inputs[0]![0]], [name]);
    g.output(name, type, dims);
  }
  return g.encode().model;
}
async function broken(part: string, model: Uint8Array): Promise<ModelFolderError> {
  const dir = join(root, `broken-${part}`);
  await cp(join(root, 'legacy'), dir, { recursive: true });
  await writeFile(join(dir, part, 'model.onnx'), model);
  try {
    await loadModel(dir);
  } catch (error) {
    assert.ok(error instanceof ModelFolderError);
    return error;
  }
  assert.fail('expected a ModelFolderError');
}
const image: Dim[] = ['batch', 4, 'h', 'w'];

test('a UNet without sample and with an int32 timestep is refused, naming both tensors', async () => {
  const error = await broken(
    'unet',
    stub(
      [
        ['latents', 'float32', image],
        ['timestep', 'int32', [1]],
        ['encoder_hidden_states', 'float32', ['b', 77, 32]],
      ],
      [['out_sample', 'float32', image]],
    ),
  );
  assert.match(error.message, /unet\/model\.onnx: has no input 'sample'/);
  assert.match(error.message, /unet\/model\.onnx: 'timestep' has type int32, expected float32, float16 or int64/);
});

test('a UNet with 5 sample channels or a rank-2 timestep is refused', async () => {
  const error = await broken(
    'unet',
    stub(
      [
        ['sample', 'float32', ['b', 5, 'h', 'w']],
        ['timestep', 'float32', [1, 1]],
        ['encoder_hidden_states', 'float32', ['b', 77, 32]],
      ],
      [['out_sample', 'float32', ['b', 5, 'h', 'w']]],
    ),
  );
  assert.match(error.message, /'sample' has 5 channels, expected 4 or 9/);
  assert.match(error.message, /'timestep' has rank 2/);
});

test('a VAE decoder whose output is not 3 channels is refused', async () => {
  const error = await broken(
    'vae_decoder',
    stub([['latent_sample', 'float32', image]], [['sample', 'float32', ['b', 4, 'H', 'W']]]),
  );
  assert.match(error.message, /vae_decoder\/model\.onnx: 'sample' has 4 channels, expected 3/);
});

test('a text encoder with float ids and a VAE encoder with neither latent output are refused', async () => {
  const error = await broken(
    'text_encoder',
    stub([['input_ids', 'float32', ['b', 77]]], [['last_hidden_state', 'float32', ['b', 77]]]),
  );
  assert.match(error.message, /text_encoder\/model\.onnx: 'input_ids' has type float32, expected int32 or int64/);
  const enc = await broken(
    'vae_encoder',
    stub([['sample', 'float32', ['b', 3, 'H', 'W']]], [['latent', 'float32', ['b', 3, 'H', 'W']]]),
  );
  assert.match(enc.message, /vae_encoder\/model\.onnx: has neither 'latent_sample' nor 'latent_parameters'/);
});
