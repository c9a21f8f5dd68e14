// What an edit may cost before any work starts: outputs no encoder can write, and the decoded
// pixels one edit and all admitted edits may hold. Each refusal comes before the engine runs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { MAX_OUTPUT_SIDE } from '../../src/contract/validate.ts';
import { solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, editsUrl, file, GatedEngine, type Part, postForm } from './helpers.ts';

const edit = (app: TestApp, parts: Part[]) =>
  postForm(app, editsUrl('gpt-image-1'), [{ name: 'prompt', value: 'add a hat' }, ...parts]);

describe('outputs an encoder cannot write', () => {
  let app: TestApp;
  let engine: GatedEngine;
  before(async () => {
    engine = new GatedEngine();
    engine.release();
    app = await startTestApp({ engine });
  });
  after(() => app.dispose());

  const cases: Array<{ format: 'webp' | 'jpeg' | 'png'; width: number; height: number; ok: boolean }> = [
    { format: 'webp', width: MAX_OUTPUT_SIDE.webp, height: 1, ok: true },
    { format: 'webp', width: 1, height: MAX_OUTPUT_SIDE.webp, ok: true },
    { format: 'webp', width: 16384, height: 1, ok: false },
    { format: 'webp', width: 1, height: 16384, ok: false },
    { format: 'jpeg', width: MAX_OUTPUT_SIDE.jpeg, height: 1, ok: true },
    { format: 'jpeg', width: MAX_OUTPUT_SIDE.jpeg + 1, height: 1, ok: false },
    { format: 'jpeg', width: 65536, height: 1, ok: false },
    { format: 'jpeg', width: 1, height: 65536, ok: false },
    { format: 'png', width: 65536, height: 1, ok: true },
  ];
  for (const { format, width, height, ok } of cases) {
    test(`a ${width}x${height} edit with output_format ${format} ${ok ? 'is edited' : 'is a 400 naming output_format, before the engine runs'}`, async () => {
      const runs = engine.runs;
      const res = await edit(app, [
        file('image', await solidPng(width, height)),
        { name: 'output_format', value: format },
      ]);
      if (ok) {
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(engine.runs, runs + 1);
        return;
      }
      const error = assertError(res, 400, 'invalid_parameter', 'output_format');
      assert.match(String(error.message), new RegExp(`${width}x${height}.*at most ${MAX_OUTPUT_SIDE[format]}`));
      assert.equal(engine.runs, runs, 'the engine never ran');
    });
  }
});

describe('decoded pixels per edit (defaults)', () => {
  let app: TestApp;
  let engine: GatedEngine;
  before(async () => {
    engine = new GatedEngine();
    engine.release();
    app = await startTestApp({ engine });
  });
  after(() => app.dispose());

  test('16 single-colour 4096x4096 PNGs (a small request) are a 400 naming image, and nothing is decoded or run', async () => {
    const big = await solidPng(4096, 4096);
    const res = await edit(
      app,
      Array.from({ length: 16 }, () => file('image[]', big)),
    );
    const error = assertError(res, 400, 'invalid_image', 'image');
    assert.match(String(error.message), /limits\.maxEditPixels/);
    assert.equal(engine.runs, 0);
    assert.equal(app.services.pixelBudget.inUse(), 0);
  });

  test('the outputs count: one 4096x4096 image with n=4 is over the default budget', async () => {
    const big = await solidPng(4096, 4096);
    assertError(await edit(app, [file('image', big), { name: 'n', value: '4' }]), 400, 'invalid_image', 'image');
    assert.equal(engine.runs, 0);
  });
});

describe('decoded pixels in flight', () => {
  let app: TestApp;
  let engine: GatedEngine;
  // A 16x16 edit with n=1 holds 512 pixels: its upload and its output.
  before(async () => {
    engine = new GatedEngine();
    app = await startTestApp({ engine, config: { limits: { maxEditPixels: 1000, maxPixelsInFlight: 1600 } } });
  });
  after(() => app.dispose());

  test('edits past the in-flight budget get 429 with retry-after; the budget frees as jobs settle', async () => {
    const small = await solidPng(16, 16);
    const admitted = [
      edit(app, [file('image', small)]),
      edit(app, [file('image', small)]),
      edit(app, [file('image', small)]),
    ];
    await engine.started;
    while (app.services.pixelBudget.inUse() < 1536) await new Promise((resolve) => setImmediate(resolve));
    const refused = await edit(app, [file('image', small)]);
    assert.match(String(assertError(refused, 429, '429').message), /maxPixelsInFlight/);
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 59, `retry-after ${retryAfter}`);
    engine.release();
    for (const res of await Promise.all(admitted)) assert.equal(res.statusCode, 200, res.body);
    assert.equal(app.services.pixelBudget.inUse(), 0);
    assert.equal((await edit(app, [file('image', small)])).statusCode, 200);
  });

  test('an edit over the per-edit budget is a 400, not a 429', async () => {
    assertError(await edit(app, [file('image', await solidPng(32, 32))]), 400, 'invalid_image', 'image');
  });

  test('a PNG whose header is fine but whose data is truncated fails when decoded, with 400 naming image, and frees its pixels', async () => {
    engine.release();
    const png = await solidPng(16, 16, [1, 2, 3, 255]);
    const truncated = png.subarray(0, png.length - 20);
    assertError(await edit(app, [file('image', truncated)]), 400, 'invalid_image', 'image');
    assert.equal(app.services.pixelBudget.inUse(), 0);
  });
});
