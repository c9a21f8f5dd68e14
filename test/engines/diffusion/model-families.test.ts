// The tiny SDXL and LCM folders load with their families' contracts (docs/diffusion.md, from "Tensor names" to "SDXL
// conditioning"),
// and one forward pass of every part runs on feeds built only from those contracts: the SDXL
// conditioning (penultimate hidden states of both encoders, text_embeds, time_ids) and LCM's
// timestep_cond each reach the UNet. Batch 2, 16×16 latents (128 px) keep it fast.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import type ort from 'onnxruntime-node';

import {
  floatTensor,
  idsTensor,
  type LoadedModel,
  tensorToFloat32,
  type TextEncoderContract,
  timestepTensor,
} from '../../../src/engines/diffusion/model/index.ts';
import { tinyModels } from '../../helpers/tiny-models.ts';

const { load } = await tinyModels('easel-model-families-');

const sdxl = await load('sdxl', { family: 'sdxl' });
const sdxl16 = await load('sdxl-fp16', { family: 'sdxl', fp16: true, idsType: 'int64', timestep: 'float-scalar' });
const sdxlInpaint = await load('sdxl-inpaint', { family: 'sdxl', inpainting: true, externalData: true });
const sdxlInpaint16 = await load('sdxl-inpaint-fp16', {
  family: 'sdxl',
  inpainting: true,
  fp16: true,
  timestep: 'int64-vector',
  latentParameters: true,
});
const lcm = await load('lcm', { family: 'lcm' });
const lcm16 = await load('lcm-fp16', { family: 'lcm', fp16: true, idsType: 'int64', timestep: 'int64-vector' });

const BATCH = 2;
const LATENT = 16;
const differs = (a: Float32Array, b: Float32Array) => a.some((v, i) => Math.abs(v - b[i]!) > 1e-3);
const pseudoRandom = (count: number, seed: number) =>
  Float32Array.from({ length: count }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.9);

async function encode(m: LoadedModel, which: 1 | 2, prompts: string[]): Promise<ort.InferenceSession.ReturnType> {
  const [session, contract, tokenizer] =
    which === 1
      ? [m.sessions.textEncoder, m.contracts.textEncoder, m.tokenizer]
      : [m.sessions.textEncoder2!, m.contracts.textEncoder2!, m.tokenizer2!];
  const ids = prompts.flatMap((p) => tokenizer.encode(p).inputIds);
  return session.run({
    [contract.idsName]: idsTensor(contract.idsType, ids, [prompts.length, ids.length / prompts.length]),
  });
}

/**
 * SDXL's prompt_embeds: the penultimate hidden states of both encoders, concatenated on the last axis
 * (docs/diffusion.md, "SDXL conditioning").
 */
function concatPenultimate(parts: Array<{ out: ort.InferenceSession.ReturnType; contract: TextEncoderContract }>): {
  data: Float32Array;
  width: number;
} {
  const chosen = parts.map(({ out, contract }) => {
    const t = out[contract.hiddenStates.at(-2)!]!;
    return { data: tensorToFloat32(t), width: t.dims[2]! };
  });
  const width = chosen.reduce((sum, c) => sum + c.width, 0);
  const rows = chosen[0]!.data.length / chosen[0]!.width;
  const data = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let offset = r * width;
    for (const c of chosen) {
      data.set(c.data.subarray(r * c.width, (r + 1) * c.width), offset);
      offset += c.width;
    }
  }
  return { data, width };
}

/** LCM's w embedding (diffusers get_guidance_scale_embedding), one row per batch item. */
function guidanceEmbedding(guidance: number, dim: number): Float32Array {
  const half = dim / 2;
  const row = Array.from({ length: dim }, (_, i) => {
    const freq = Math.exp(-(i % half) * (Math.log(10000) / (half - 1)));
    const angle = (guidance - 1) * 1000 * freq;
    return i < half ? Math.sin(angle) : Math.cos(angle);
  });
  return Float32Array.from([...row, ...row]);
}

interface UnetFeed {
  context: { data: Float32Array; width: number };
  textEmbeds?: Float32Array;
  timeIds?: Float32Array;
  timestepCond?: Float32Array;
}

/** One UNet step fed purely from the contract; returns out_sample as float32. */
async function runUnet(m: LoadedModel, feed: UnetFeed): Promise<Float32Array> {
  const c = m.contracts.unet;
  const channels = m.inpainting ? 9 : 4;
  const feeds: Record<string, ort.Tensor> = {
    sample: floatTensor(c.sampleType, pseudoRandom(BATCH * channels * LATENT * LATENT, 1), [
      BATCH,
      channels,
      LATENT,
      LATENT,
    ]),
    timestep: timestepTensor(c.timestep, 999, BATCH),
    encoder_hidden_states: floatTensor(c.encoderHiddenStatesType, feed.context.data, [
      BATCH,
      feed.context.data.length / BATCH / feed.context.width,
      feed.context.width,
    ]),
  };
  const extra = (input: typeof c.textEmbeds, values: Float32Array | undefined) => {
    if (!input) return;
    assert.ok(values, `${input.name} is fed`);
    feeds[input.name] = floatTensor(input.type, values, [BATCH, input.size!]);
  };
  extra(c.textEmbeds, feed.textEmbeds);
  extra(c.timeIds, feed.timeIds);
  extra(c.timestepCond, feed.timestepCond);
  const out = await m.sessions.unet.run(feeds);
  assert.deepEqual(out[c.output]!.dims, [BATCH, 4, LATENT, LATENT]);
  assert.equal(out[c.output]!.type, c.outputType);
  const data = tensorToFloat32(out[c.output]!);
  assert.ok(data.every(Number.isFinite));
  return data;
}

async function sdxlConditioning(m: LoadedModel): Promise<UnetFeed> {
  const prompts = ['a photo of a cat', 'a dog'];
  const [out1, out2] = await Promise.all([encode(m, 1, prompts), encode(m, 2, prompts)]);
  const context = concatPenultimate([
    { out: out1, contract: m.contracts.textEncoder },
    { out: out2, contract: m.contracts.textEncoder2! },
  ]);
  const textEmbeds = tensorToFloat32(out2[m.contracts.textEncoder2!.pooled!]!);
  const timeIds = Float32Array.from([1024, 1024, 0, 0, 1024, 1024, 1024, 1024, 0, 0, 1024, 1024]);
  return { context, textEmbeds, timeIds };
}

test('SDXL folder: family sdxl, both encoders with hidden_states, text_embeds 48 and time_ids 6 on the UNet, scaling 0.13025, 1024 px', async () => {
  const m = sdxl;
  assert.deepEqual([m.family, m.folder.pipelineClass, m.inpainting], ['sdxl', 'StableDiffusionXLPipeline', false]);
  assert.deepEqual(m.contracts.textEncoder, {
    idsName: 'input_ids',
    idsType: 'int32',
    sequenceLength: null,
    lastHiddenState: 'last_hidden_state',
    pooled: 'pooler_output',
    hiddenStates: ['hidden_states.0', 'hidden_states.1', 'hidden_states.2'],
    outputType: 'float32',
    hiddenSize: 32,
  });
  assert.deepEqual(m.contracts.textEncoder2, {
    idsName: 'input_ids',
    idsType: 'int32',
    sequenceLength: null,
    lastHiddenState: 'last_hidden_state',
    pooled: 'text_embeds',
    hiddenStates: ['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3'],
    outputType: 'float32',
    hiddenSize: 48,
  });
  assert.deepEqual(m.contracts.unet, {
    sampleType: 'float32',
    sampleChannels: 4,
    timestep: { type: 'float32', rank: 1, length: 'one' },
    encoderHiddenStatesType: 'float32',
    crossAttentionDim: 80,
    textEmbeds: { name: 'text_embeds', type: 'float32', size: 48 },
    timeIds: { name: 'time_ids', type: 'float32', size: 6 },
    timestepCond: null,
    output: 'out_sample',
    outputType: 'float32',
  });
  assert.equal(m.vaeScalingFactor, 0.13025);
  assert.equal(m.vaeScaleFactor, 8);
  assert.equal(m.nativeResolution, 1024);
  assert.deepEqual(
    [m.schedulerConfig._class_name, m.schedulerConfig.timestep_spacing],
    ['EulerAncestralDiscreteScheduler', 'trailing'],
  );
  assert.equal(m.tokenizer.padTokenId, m.tokenizer.eosTokenId, 'tokenizer pads with <|endoftext|>');
  assert.equal(m.tokenizer2?.padTokenId, 0, "tokenizer_2 pads with '!'");
  const index = JSON.parse(await readFile(join(m.folder.path, 'model_index.json'), 'utf8'));
  assert.deepEqual(
    [index.text_encoder_2, index.tokenizer_2],
    [
      ['transformers', 'CLIPTextModelWithProjection'],
      ['transformers', 'CLIPTokenizer'],
    ],
  );
  const unetConfig = m.folder.configs.unet!;
  assert.deepEqual(
    [unetConfig.addition_embed_type, unetConfig.projection_class_embeddings_input_dim, unetConfig.cross_attention_dim],
    ['text_time', 48 + 6 * 8, 80],
  );
});

test('SDXL fp16 and inpainting folders: float16 everywhere, 9 channels, the extra inputs in the part float type', async () => {
  for (const m of [sdxl16, sdxlInpaint16]) {
    const { unet, textEncoder, textEncoder2, vaeDecoder } = m.contracts;
    assert.deepEqual(
      [textEncoder.outputType, textEncoder2?.outputType, unet.sampleType, unet.outputType, vaeDecoder.inputType],
      Array(5).fill('float16'),
    );
    assert.deepEqual([unet.textEmbeds?.type, unet.timeIds?.type], ['float16', 'float16']);
  }
  assert.deepEqual(sdxl16.contracts.unet.timestep, { type: 'float16', rank: 0, length: 'one' });
  assert.equal(sdxl16.contracts.textEncoder2?.idsType, 'int64');
  for (const m of [sdxlInpaint, sdxlInpaint16]) {
    assert.deepEqual(
      [m.family, m.folder.pipelineClass, m.inpainting, m.contracts.unet.sampleChannels],
      ['sdxl', 'StableDiffusionXLInpaintPipeline', true, 9],
    );
    assert.ok(m.sessions.vaeEncoder);
  }
  assert.equal(sdxlInpaint16.contracts.vaeEncoder?.outputKind, 'latent_parameters');
});

test('LCM folder: family lcm, LCMScheduler, timestep_cond of time_cond_proj_dim 8, scaling 0.18215, 512 px', () => {
  for (const m of [lcm, lcm16]) {
    assert.deepEqual(
      [m.family, m.folder.pipelineClass, m.schedulerConfig._class_name],
      ['lcm', 'LatentConsistencyModelPipeline', 'LCMScheduler'],
    );
    const float = m === lcm ? 'float32' : 'float16';
    assert.deepEqual(m.contracts.unet.timestepCond, { name: 'timestep_cond', type: float, size: 8 });
    assert.deepEqual(
      [m.contracts.unet.textEmbeds, m.contracts.unet.timeIds, m.contracts.textEncoder2, m.tokenizer2],
      [null, null, undefined, undefined],
    );
    assert.deepEqual(
      [m.vaeScalingFactor, m.nativeResolution, m.folder.configs.unet?.time_cond_proj_dim],
      [0.18215, 512, 8],
    );
  }
  assert.deepEqual(lcm16.contracts.unet.timestep, { type: 'int64', rank: 1, length: 'one' });
});

test('SDXL text encoders return [2,77,D] hidden states per layer, and text_embeds [2,48] from encoder 2', async () => {
  for (const m of [sdxl, sdxl16]) {
    const [out1, out2] = await Promise.all([encode(m, 1, ['a cat', 'a dog']), encode(m, 2, ['a cat', 'a dog'])]);
    for (const name of m.contracts.textEncoder.hiddenStates) assert.deepEqual(out1[name]!.dims, [2, 77, 32]);
    for (const name of m.contracts.textEncoder2!.hiddenStates) assert.deepEqual(out2[name]!.dims, [2, 77, 48]);
    assert.deepEqual(out1.pooler_output!.dims, [2, 32]);
    assert.deepEqual(out2.text_embeds!.dims, [2, 48]);
    const [penultimate, last] = [tensorToFloat32(out2['hidden_states.2']!), tensorToFloat32(out2.last_hidden_state!)];
    assert.ok(differs(penultimate, last), 'the penultimate layer is not the last');
  }
});

test('SDXL UNet runs on the concatenated [2,77,80] embeddings and its output moves with text_embeds and time_ids', async () => {
  for (const m of [sdxl, sdxl16, sdxlInpaint, sdxlInpaint16]) {
    const feed = await sdxlConditioning(m);
    assert.equal(feed.context.width, 80);
    const base = await runUnet(m, feed);
    // force_zeros_for_empty_prompt: the unconditional text_embeds are zeros (docs/diffusion.md, "SDXL conditioning").
    assert.ok(
      differs(base, await runUnet(m, { ...feed, textEmbeds: new Float32Array(feed.textEmbeds!.length) })),
      `${m.folder.path}: text_embeds matter`,
    );
    const smaller = feed.timeIds!.map((v) => v / 2);
    assert.ok(differs(base, await runUnet(m, { ...feed, timeIds: smaller })), `${m.folder.path}: time_ids matter`);
    const otherContext = { data: pseudoRandom(feed.context.data.length, 7), width: 80 };
    assert.ok(
      differs(base, await runUnet(m, { ...feed, context: otherContext })),
      `${m.folder.path}: encoder_hidden_states matter`,
    );
  }
});

test('LCM UNet output moves with timestep_cond (the guidance embedding)', async () => {
  for (const m of [lcm, lcm16]) {
    const out = await encode(m, 1, ['a photo of a cat', 'a dog']);
    const hidden = out[m.contracts.textEncoder.lastHiddenState]!;
    const context = { data: tensorToFloat32(hidden), width: hidden.dims[2]! };
    const dim = m.contracts.unet.timestepCond!.size!;
    const base = await runUnet(m, { context, timestepCond: guidanceEmbedding(8, dim) });
    assert.ok(
      differs(base, await runUnet(m, { context, timestepCond: guidanceEmbedding(2, dim) })),
      `${m.folder.path}: timestep_cond matters`,
    );
  }
});

test('an LCM-SDXL UNet (sdxl with timeCondProjDim) takes text_embeds, time_ids and timestep_cond', async () => {
  const m = await load('lcm-sdxl', { family: 'sdxl', timeCondProjDim: 8, scheduler: 'lcm' });
  assert.equal(m.family, 'sdxl');
  assert.deepEqual(
    [m.contracts.unet.textEmbeds?.size, m.contracts.unet.timeIds?.size, m.contracts.unet.timestepCond?.size],
    [48, 6, 8],
  );
  const feed = { ...(await sdxlConditioning(m)), timestepCond: guidanceEmbedding(8, 8) };
  const base = await runUnet(m, feed);
  assert.ok(differs(base, await runUnet(m, { ...feed, timestepCond: guidanceEmbedding(2, 8) })));
});

test('SDXL and LCM VAEs decode [2,4,16,16] to [2,3,128,128] and encode it back', async () => {
  for (const m of [sdxl, sdxl16, sdxlInpaint16, lcm16]) {
    const { vaeDecoder, vaeEncoder } = m.contracts;
    const latents = floatTensor(vaeDecoder.inputType, pseudoRandom(BATCH * 4 * LATENT * LATENT, 3), [
      BATCH,
      4,
      LATENT,
      LATENT,
    ]);
    const image = (await m.sessions.vaeDecoder.run({ [vaeDecoder.input]: latents }))[vaeDecoder.output]!;
    assert.deepEqual(image.dims, [BATCH, 3, LATENT * 8, LATENT * 8]);
    assert.ok(tensorToFloat32(image).every((v) => v > -1 && v < 1));
    const encoded = (await m.sessions.vaeEncoder!.run({ [vaeEncoder!.input]: image }))[vaeEncoder!.output]!;
    assert.deepEqual(encoded.dims, [BATCH, vaeEncoder!.outputKind === 'latent_parameters' ? 8 : 4, LATENT, LATENT]);
  }
});
