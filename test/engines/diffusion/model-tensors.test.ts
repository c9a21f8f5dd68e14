// fp16 conversion (round to nearest even, inf, NaN, subnormals) and the feeds built from contracts,
// checked by running the tiny UNet and text encoder with them.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import {
  floatTensor,
  fromFloat16Array,
  fromFloat16Bits,
  idsTensor,
  type LoadedModel,
  loadModel,
  tensorToFloat32,
  timestepTensor,
  toFloat16Array,
  toFloat16Bits,
} from '../../../src/engines/diffusion/model/index.ts';
import { type TinyModelOptions, writeTinyModel } from '../../../tools/model-builder/tiny-sd.ts';

test('fp16: exact bits for the edge values', () => {
  assert.equal(toFloat16Bits(0), 0x0000);
  assert.equal(toFloat16Bits(-0), 0x8000);
  assert.equal(toFloat16Bits(1), 0x3c00);
  assert.equal(toFloat16Bits(-2), 0xc000);
  assert.equal(toFloat16Bits(65504), 0x7bff); // largest finite
  assert.equal(toFloat16Bits(65519), 0x7bff); // just below the rounding boundary
  assert.equal(toFloat16Bits(65520), 0x7c00); // ties to even → Infinity
  assert.equal(toFloat16Bits(-Infinity), 0xfc00);
  assert.equal(toFloat16Bits(1e-8), 0x0000); // below half the smallest subnormal (2^-25 ≈ 2.98e-8)
  assert.equal(toFloat16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(toFloat16Bits(3 * 2 ** -25), 0x0002); // a tie between subnormals 1 and 2 goes to even
  assert.equal(toFloat16Bits(1e-5), 0x00a8); // subnormal: round(1e-5 / 2^-24) = 168
  assert.equal(toFloat16Bits(2 ** -14), 0x0400); // smallest normal
  assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00); // tie → even (down)
  assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  const nan = toFloat16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  assert.ok(Number.isNaN(fromFloat16Bits(nan)));
  assert.equal(fromFloat16Bits(0x7bff), 65504);
  assert.equal(fromFloat16Bits(0x7c00), Infinity);
  assert.ok(Object.is(fromFloat16Bits(0x8000), -0));
  assert.equal(fromFloat16Bits(0x0001), 2 ** -24);
});

test('fp16: every finite half survives a round trip, and random values stay within half an ulp', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    if ((bits & 0x7c00) === 0x7c00) continue;
    assert.equal(toFloat16Bits(fromFloat16Bits(bits)), bits);
  }
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const values = Float32Array.from({ length: 10000 }, () => random() * 1000);
  const back = fromFloat16Array(toFloat16Array(values));
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 10);
    assert.ok(Math.abs(back[i]! - v) <= ulp / 2, `${v} → ${back[i]}`);
  }
});

const root = await mkdtemp(join(tmpdir(), 'easel-model-tensors-'));
const models: LoadedModel[] = [];
after(async () => {
  await Promise.all(models.map((m) => m.release()));
  await rm(root, { recursive: true, force: true });
});
const variants: Record<string, TinyModelOptions> = {
  'float-vector': {},
  'float-scalar': { idsType: 'int64', timestep: 'float-scalar' },
  'int64-vector': { timestep: 'int64-vector' },
  'fp16-scalar': { fp16: true, timestep: 'float-scalar', idsType: 'int64' },
  'fp16-int64': { fp16: true, timestep: 'int64-vector' },
  inpaint: { inpainting: true, externalData: true },
};

test('feeds built from the contracts have the declared dtype and dims and run the tiny model', async () => {
  const batch = 2;
  const [h, w] = [8, 8];
  for (const [name, options] of Object.entries(variants)) {
    await writeTinyModel(join(root, name), options);
    const m = await loadModel(join(root, name), { intraOpNumThreads: 1 });
    models.push(m);
    const { textEncoder: te, unet } = m.contracts;

    const ids = idsTensor(te.idsType, new Array(batch * 77).fill(m.tokenizer.padTokenId), [batch, 77]);
    assert.equal(ids.type, te.idsType, name);
    assert.equal(ids.data instanceof (te.idsType === 'int64' ? BigInt64Array : Int32Array), true, name);
    const text = await m.sessions.textEncoder.run({ [te.idsName]: ids });
    const hidden = text[te.lastHiddenState]!;
    assert.deepEqual(hidden.dims, [batch, 77, 32], name);

    const t = timestepTensor(unet.timestep, 999.4, batch);
    assert.equal(t.type, unet.timestep.type, name);
    assert.deepEqual(t.dims, unet.timestep.rank === 0 ? [] : [1], name);
    if (t.type === 'int64') assert.equal((t.data as BigInt64Array)[0], 999n, name); // rounded

    const channels = m.inpainting ? 9 : 4;
    const sample = floatTensor(unet.sampleType, new Float32Array(batch * channels * h * w).fill(0.5), [
      batch,
      channels,
      h,
      w,
    ]);
    assert.equal(sample.type, unet.sampleType, name);
    const context = floatTensor(unet.encoderHiddenStatesType, tensorToFloat32(hidden), hidden.dims);
    const out = await m.sessions.unet.run({ sample, timestep: t, encoder_hidden_states: context });
    const result = out[unet.output]!;
    assert.equal(result.type, unet.outputType, name);
    assert.deepEqual(result.dims, [batch, 4, h, w], name);
    assert.ok(tensorToFloat32(result).every(Number.isFinite), name);
  }
});

test('a rank-1 timestep whose dim is fixed or the batch dim gets that length', () => {
  assert.deepEqual(timestepTensor({ type: 'float32', rank: 1, length: 'batch' }, 5, 3).dims, [3]);
  assert.deepEqual(timestepTensor({ type: 'float32', rank: 1, length: 2 }, 5, 3).dims, [2]);
  const half = timestepTensor({ type: 'float16', rank: 0, length: 'one' }, 999, 2);
  assert.equal(half.type, 'float16');
  assert.equal(fromFloat16Bits((half.data as Uint16Array)[0]!), 999);
});
