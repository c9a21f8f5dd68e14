import assert from 'node:assert/strict';
import { test } from 'node:test';

import { normalSource, randn, uniformSource, xoshiro128ss } from '../../../src/engines/diffusion/random.ts';

test('xoshiro128** from state [1, 2, 3, 4] gives the reference implementation’s first outputs', () => {
  // Computed by the C reference (prng.di.unimi.it/xoshiro128starstar.c) arithmetic on uint32.
  const next = xoshiro128ss([1, 2, 3, 4]);
  assert.deepEqual(Array.from({ length: 6 }, next), [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('randn over 100k samples has mean ≈ 0 (±0.015) and variance ≈ 1 (±0.025), about 5 standard errors', () => {
  const values = randn(100_000, 1234);
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
  assert.ok(Math.abs(mean) < 0.015, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.025, `variance ${variance}`);
  // Tails: P(|z| > 3) = 0.0027, so about 270 of 100k (standard deviation ≈ 16).
  const tails = values.filter((v) => Math.abs(v) > 3).length;
  assert.ok(tails > 190 && tails < 350, `${tails} values beyond 3σ`);
});

test('the same seed gives the same values; other seeds, including ones differing only above bit 32, do not', () => {
  assert.deepEqual(randn(1000, 42), randn(1000, 42));
  assert.notDeepEqual(randn(16, 42), randn(16, 43));
  assert.notDeepEqual(randn(16, 0), randn(16, 2 ** 32));
  assert.notDeepEqual(randn(16, -1), randn(16, 2 ** 32 - 1));
});

test('randn(4, 42) is pinned: changing the generator would change every picture for a given seed', () => {
  assert.deepEqual(
    [...randn(4, 42)],
    [-0.33836862444877625, 1.4306471347808838, -1.1462703943252563, -1.2754586935043335],
  );
});

test('a normal source continues one stream: two draws of 4 equal one randn of 8', () => {
  const source = normalSource(9);
  const drawn = new Float32Array(Array.from({ length: 8 }, source));
  assert.deepEqual(drawn, randn(8, 9));
});

test('uniforms lie in [0, 1) and seeds must be safe integers', () => {
  const uniform = uniformSource(5);
  for (let i = 0; i < 10_000; i++) {
    const u = uniform();
    assert.ok(u >= 0 && u < 1, `${u}`);
  }
  assert.throws(() => randn(1, 1.5), RangeError);
  assert.throws(() => randn(1, 2 ** 53), RangeError);
  assert.throws(() => xoshiro128ss([0, 0, 0, 0]), RangeError);
});
