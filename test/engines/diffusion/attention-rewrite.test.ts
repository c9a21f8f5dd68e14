// The load-time attention rewrite (src/engines/diffusion/model/attention-rewrite.ts): the unfused
// attention of the model builder's graphs and of torch's scaled_dot_product_attention export becomes
// one MultiHeadAttention node with the same outputs; anything it does not recognise is left as it
// was, with the reason; loadModel applies it to the UNet unless told not to.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import ort from 'onnxruntime-node';

import {
  fuseAttention,
  loadModel,
  rewriteModelFile,
  sessionOptionsFor,
  withExternalDataFolder,
} from '../../../src/engines/diffusion/model/index.ts';
import { ProtoError, readFields as readProto } from '../../../src/engines/diffusion/model/onnx-proto.ts';
import { writeArchitectureModel, writeArchitecturePart } from '../../../tools/model-builder/architectures.ts';
import { linear, multiHeadAttention, Net, WeightStream } from '../../../tools/model-builder/layers.ts';
import { GraphBuilder } from '../../../tools/model-builder/onnx.ts';

const dir = await mkdtemp(join(tmpdir(), 'easel-attention-rewrite-'));
after(() => rm(dir, { recursive: true, force: true }));

const S = 16; // tokens
const T = 8; // key/value tokens (cross-attention)
const C = 32;
const H = 4;

function values(count: number, seed: number): Float32Array {
  return new WeightStream(seed, 7).next(count, 1);
}

/** x [1, S, C] attending over ctx [1, T, C] with projected q, k, v, as the UNet's blocks do. */
function builderAttention(
  options: { fused?: boolean; mask?: boolean; external?: boolean; float16?: boolean } = {},
): Net {
  const net = new Net('attention', {
    float: options.float16 ? 'float16' : 'float32',
    weights: new WeightStream(3, 0),
    external: options.external ?? false,
    fusedAttention: options.fused ?? false,
  });
  const x = net.g.input('x', net.float, [1, S, C]);
  const ctx = net.g.input('ctx', net.float, [1, T, C]);
  const q = linear(net, 'to_q', x, C, C, false);
  const k = linear(net, 'to_k', ctx, C, C, false);
  const v = linear(net, 'to_v', ctx, C, C, false);
  const mask = options.mask ? net.constant('mask', net.float, [1, 1, S, T], () => values(S * T, 9)) : undefined;
  const out = linear(net, 'to_out', multiHeadAttention(net, 'attn', q, k, v, C, H, mask), C, C);
  net.g.node('Identity', [out], ['y']);
  net.g.output('y', net.float, [1, S, C]);
  return net;
}

const feeds = () => ({
  x: new ort.Tensor('float32', values(S * C, 1), [1, S, C]),
  ctx: new ort.Tensor('float32', values(T * C, 2), [1, T, C]),
});

async function run(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions = {}) {
  const session = await ort.InferenceSession.create(model as Uint8Array, { ...sessionOptionsFor(), ...options });
  try {
    const result = await session.run(feeds());
    return result.y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function assertClose(actual: Float32Array, expected: Float32Array) {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst < 1e-4, `max abs difference ${worst}`);
}

/** The op types of a model's nodes (through the rewrite's own reader: node = 1, op_type = 4). */
function opTypes(model: Uint8Array): string[] {
  const fields = readProto(model);
  const graph = readProto(fields.find((f) => f.field === 7)!.bytes!);
  return graph
    .filter((f) => f.field === 1)
    .map((f) => new TextDecoder().decode(readProto(f.bytes!).find((x) => x.field === 4)!.bytes));
}

test('the model builder’s unfused attention becomes one MultiHeadAttention with the same output', async () => {
  const original = builderAttention().g.encode().model;
  const rewrite = fuseAttention(original);
  assert.equal(rewrite.fused, 1);
  assert.deepEqual(rewrite.skipped, []);
  const ops = opTypes(rewrite.model!);
  assert.ok(ops.includes('MultiHeadAttention'));
  for (const gone of ['Softmax', 'Transpose', 'Reshape']) assert.ok(!ops.includes(gone), `${gone} left`);
  const expected = await run(original);
  assertClose(await run(rewrite.model!), expected);
  // The same as the builder's own fused graph.
  assertClose(await run(builderAttention({ fused: true }).g.encode().model), expected);
});

test('a model with external weights, rewritten and opened from memory, finds them in its folder', async () => {
  const folder = join(dir, 'external');
  await mkdir(folder, { recursive: true });
  const path = join(folder, 'model.onnx');
  builderAttention({ external: true }).g.write(path, { externalData: 'model.onnx_data' });
  const rewrite = await rewriteModelFile(path);
  assert.equal(rewrite.fused, 1);
  assertClose(await run(rewrite.model!, withExternalDataFolder({}, folder)), await run(path));
});

/**
 * torch.onnx's export of diffusers' attention with scaled_dot_product_attention: head splits shaped
 * by Concat(Unsqueeze(Gather(Shape(x), 0)), -1, heads, head_dim) and the scale √(1/√d) computed from
 * the query's shape and multiplied into both the query and the transposed key.
 */
function torchSdpaAttention(options: { dynamicHeads?: boolean } = {}): Uint8Array {
  const g = new GraphBuilder('sdpa');
  const i64 = (name: string, dims: number[], v: number[]) =>
    g.initializer(name, 'int64', dims, BigInt64Array.from(v, BigInt));
  const f32 = (name: string, dims: number[], v: number[]) => g.initializer(name, 'float32', dims, Float32Array.from(v));
  g.input('x', 'float32', [1, S, C]);
  g.input('ctx', 'float32', [1, T, C]);
  const w = (name: string) => f32(name, [C, C], Array.from(values(C * C, name.length)));
  g.node('MatMul', ['x', w('wq')], ['q']);
  g.node('MatMul', ['ctx', w('wkk')], ['k']);
  g.node('MatMul', ['ctx', w('wvvv')], ['v']);
  i64('zero', [], [0]);
  i64('axes0', [1], [0]);
  i64('minus1', [1], [-1]);
  i64('heads', [1], [H]);
  i64('two', [], [2]);
  i64('headsScalar', [], [H]);
  g.node('Shape', ['x'], ['xShape']);
  g.node('Gather', ['xShape', 'zero'], ['batch'], { axis: 0 });
  g.node('Unsqueeze', ['batch', 'axes0'], ['batch1']);
  // head_dim = k.shape[-1] // heads, computed at run time as torch traces it.
  g.node('Shape', ['k'], ['kShape']);
  g.node('Gather', ['kShape', 'two'], ['inner'], { axis: 0 });
  g.node('Div', ['inner', 'headsScalar'], ['headDim']);
  g.node('Unsqueeze', ['headDim', 'axes0'], ['headDim1']);
  if (options.dynamicHeads) {
    g.node('Div', ['inner', 'headDim'], ['headsDyn']);
    g.node('Unsqueeze', ['headsDyn', 'axes0'], ['heads1']);
  }
  const headsInput = options.dynamicHeads ? 'heads1' : 'heads';
  g.node('Concat', ['batch1', 'minus1', headsInput, 'headDim1'], ['split'], { axis: 0 });
  for (const t of ['q', 'k', 'v']) {
    g.node('Reshape', [t, 'split'], [`${t}Split`]);
    g.node('Transpose', [`${t}Split`], [`${t}4`], { perm: [0, 2, 1, 3] });
  }
  // torch writes these as Constant nodes, and a Sqrt of the scale for each side.
  const constant = (name: string, type: 'int64' | 'float32', v: number[]) =>
    g.node('Constant', [], [name], {
      value: {
        tensor: {
          name,
          type,
          dims: [v.length],
          data: type === 'int64' ? BigInt64Array.from(v, BigInt) : Float32Array.from(v),
        },
      },
    });
  constant('sliceStart', 'int64', [-1]);
  constant('sliceEnd', 'int64', [2 ** 53 - 1]);
  constant('one', 'float32', [1]);
  g.node('Shape', ['q4'], ['q4Shape']);
  g.node('Slice', ['q4Shape', 'sliceStart', 'sliceEnd'], ['dShape']);
  g.node('Cast', ['dShape'], ['dFloat'], { to: 1 });
  g.node('Sqrt', ['dFloat'], ['sqrtD']);
  g.node('Div', ['one', 'sqrtD'], ['scale']);
  g.node('Cast', ['scale'], ['scaleCast'], { to: 1 });
  g.node('Sqrt', ['scaleCast'], ['scaleRootQ']);
  g.node('Sqrt', ['scaleCast'], ['scaleRootK']);
  g.node('Mul', ['q4', 'scaleRootQ'], ['qScaled']);
  g.node('Transpose', ['k4'], ['kT'], { perm: [0, 1, 3, 2] });
  g.node('Mul', ['kT', 'scaleRootK'], ['kScaled']);
  g.node('MatMul', ['qScaled', 'kScaled'], ['scores']);
  g.node('Softmax', ['scores'], ['probs'], { axis: -1 });
  g.node('MatMul', ['probs', 'v4'], ['heads4']);
  g.node('Transpose', ['heads4'], ['merged4'], { perm: [0, 2, 1, 3] });
  i64('width', [1], [C]);
  g.node('Concat', ['batch1', 'minus1', 'width'], ['mergeShape'], { axis: 0 });
  g.node('Reshape', ['merged4', 'mergeShape'], ['y']);
  g.output('y', 'float32', [1, S, C]);
  return g.encode().model;
}

test('torch’s scaled_dot_product_attention export is fused, its shape arithmetic removed', async () => {
  const original = torchSdpaAttention();
  const rewrite = fuseAttention(original);
  assert.equal(rewrite.fused, 1, JSON.stringify(rewrite.skipped));
  const ops = opTypes(rewrite.model!);
  for (const gone of ['Softmax', 'Sqrt', 'Slice', 'Transpose', 'Reshape']) assert.ok(!ops.includes(gone), gone);
  assertClose(await run(rewrite.model!), await run(original));
});

test('attention it does not recognise is left as it was, with the reason', async () => {
  const masked = fuseAttention(builderAttention({ mask: true }).g.encode().model);
  assert.equal(masked.fused, 0);
  assert.equal(masked.model, null);
  assert.match(masked.skipped[0]!.reason, /mask/);

  // onnxruntime's CPU kernel is float32 only.
  const half = fuseAttention(builderAttention({ float16: true }).g.encode().model);
  assert.equal(half.fused, 0);
  assert.match(half.skipped[0]!.reason, /float16/);

  const dynamic = fuseAttention(torchSdpaAttention({ dynamicHeads: true }));
  assert.equal(dynamic.fused, 0);
  assert.match(dynamic.skipped[0]!.reason, /head count/);

  // The probabilities are also a graph output: removing them would change the model.
  const g = new GraphBuilder('exposed');
  g.input('q4', 'float32', [1, H, S, C / H]);
  g.input('k4', 'float32', [1, H, C / H, S]);
  g.node('MatMul', ['q4', 'k4'], ['scores']);
  g.node('Softmax', ['scores'], ['probs'], { axis: -1 });
  g.output('probs', 'float32', [1, H, S, S]);
  const exposed = fuseAttention(g.encode().model);
  assert.equal(exposed.fused, 0);
  assert.equal(exposed.skipped.length, 1);
});

test('bytes that are not a model are refused by the reader', async () => {
  assert.throws(() => fuseAttention(Uint8Array.of(0x0a, 0xff, 0x01)), ProtoError);
  const path = join(dir, 'garbage.onnx');
  await writeFile(path, Uint8Array.of(0x0a, 0xff, 0x01));
  await assert.rejects(rewriteModelFile(path), ProtoError);
});

test('loadModel fuses the UNet’s attention by default, and not with fuseAttention false', async () => {
  const folder = join(dir, 'small');
  await writeArchitectureModel(folder, 'small', { seed: 1 });
  const fused = await loadModel(folder, { intraOpNumThreads: 1 });
  const plain = await loadModel(folder, { intraOpNumThreads: 1, fuseAttention: false });
  try {
    assert.equal(fused.attentionRewrite?.fused, 32); // 16 transformer blocks, self- and cross-attention
    assert.deepEqual(fused.attentionRewrite?.skipped, []);
    assert.equal(plain.attentionRewrite, null);
    const input = {
      sample: new ort.Tensor('float32', values(4 * 16 * 16, 4), [1, 4, 16, 16]),
      timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
      encoder_hidden_states: new ort.Tensor('float32', values(77 * 64, 5), [1, 77, 64]),
    };
    const [a, b] = await Promise.all([fused.sessions.unet.run(input), plain.sessions.unet.run(input)]);
    assertClose(a.out_sample!.data as Float32Array, b.out_sample!.data as Float32Array);
  } finally {
    await Promise.all([fused.release(), plain.release()]);
  }
});

test('the builder’s int8 variant (bench only) computes the float UNet within the rounding of its weights', async () => {
  const unet = async (folder: string, options: { int8TransformerLinear?: boolean }) => {
    writeArchitecturePart(folder, 'small', 'unet', { seed: 1, fusedAttention: true, ...options });
    const session = await ort.InferenceSession.create(join(folder, 'unet', 'model.onnx'), sessionOptionsFor());
    try {
      const result = await session.run({
        sample: new ort.Tensor('float32', values(4 * 16 * 16, 4), [1, 4, 16, 16]),
        timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
        encoder_hidden_states: new ort.Tensor('float32', values(77 * 64, 5), [1, 77, 64]),
      });
      return result.out_sample!.data as Float32Array;
    } finally {
      await session.release();
    }
  };
  const float = await unet(join(dir, 'float-unet'), {});
  const int8 = await unet(join(dir, 'int8-unet'), { int8TransformerLinear: true });
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < float.length; i++) {
    diff += (float[i]! - int8[i]!) ** 2;
    norm += float[i]! ** 2;
  }
  const relative = Math.sqrt(diff / norm);
  assert.ok(relative > 0 && relative < 0.1, `relative L2 ${relative}`);
});
