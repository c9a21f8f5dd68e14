// Upload limits on edits: decompression bombs, bytes per image, bytes per mask. Each refusal
// stores nothing and leaves the server answering.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { loadConfig } from '../../src/config/index.ts';
import { halfMask, solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, assertHealthy, assertNothingStored, editsUrl, file, type Part, postForm } from './helpers.ts';
import { bombPng, noisePng } from './images.ts';

const DEFAULT_LIMITS = loadConfig({}).limits;

const edit = (app: TestApp, parts: Part[]) =>
  postForm(app, editsUrl('gpt-image-1'), [{ name: 'prompt', value: 'add a hat' }, ...parts]);

describe('default limits', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp();
  });
  after(() => app.dispose());

  test('a 20000x20000 PNG bomb is refused quickly with 400 invalid_image naming image, and the server serves the next edit', async () => {
    const bomb = bombPng(20000);
    assert.ok(bomb.length < 200_000, `the bomb is ${bomb.length} bytes on disk`);
    assertError(await edit(app, [file('image', bomb)]), 400, 'invalid_image', 'image');
    await assertNothingStored(app);
    await assertHealthy(app);
    const next = await edit(app, [file('image', await solidPng(16, 16))]);
    assert.equal(next.statusCode, 200, next.body);
  });

  test('a bomb as the second image[] is refused naming image', async () => {
    const res = await edit(app, [file('image[]', await solidPng(16, 16)), file('image[]', bombPng(20000))]);
    assertError(res, 400, 'invalid_image', 'image');
  });

  test('a bomb as the mask is refused with 400 naming mask', async () => {
    const res = await edit(app, [file('image', await solidPng(16, 16)), file('mask', bombPng(20000))]);
    assertError(res, 400, 'invalid_image', 'mask');
    await assertHealthy(app);
  });

  test('an image one pixel over maxInputPixels on a side is refused naming image', async () => {
    const side = Math.floor(Math.sqrt(DEFAULT_LIMITS.maxInputPixels)) + 1;
    assertError(await edit(app, [file('image', bombPng(side))]), 400, 'invalid_image', 'image');
  });

  test('a mask over 4 MB answers 413 payload_too_large naming mask', async () => {
    const mask = await noisePng(1030, 1030);
    assert.ok(mask.length > DEFAULT_LIMITS.maxMaskBytes);
    const res = await edit(app, [file('image', await solidPng(1030, 1030)), file('mask', mask)]);
    assertError(res, 413, 'payload_too_large', 'mask');
    await assertNothingStored(app);
    await assertHealthy(app);
  });

  test('a mask of 1 MB (under the limit) is accepted', async () => {
    const res = await edit(app, [file('image', await solidPng(512, 512)), file('mask', await halfMask(512, 512))]);
    assert.equal(res.statusCode, 200, res.body);
  });
});

describe('maxImageBytes: 1000', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ config: { limits: { ...DEFAULT_LIMITS, maxImageBytes: 1000 } } });
  });
  after(() => app.dispose());

  test('an image over the byte limit answers 413 payload_too_large naming image', async () => {
    const image = await noisePng(32, 32);
    assert.ok(image.length > 1000);
    assertError(await edit(app, [file('image', image)]), 413, 'payload_too_large', 'image');
    await assertNothingStored(app);
    await assertHealthy(app);
  });

  test('a second image[] over the byte limit answers 413 naming image', async () => {
    const res = await edit(app, [file('image[]', await solidPng(8, 8)), file('image[]', await noisePng(32, 32))]);
    assertError(res, 413, 'payload_too_large', 'image');
  });

  // Bug: every file over the per-file limit was reported as param image, a mask too.
  test('a mask over the per-file byte limit answers 413 naming mask, not image (per-file limit param bug)', async () => {
    const res = await edit(app, [file('image', await solidPng(8, 8)), file('mask', await noisePng(32, 32))]);
    assertError(res, 413, 'payload_too_large', 'mask');
  });

  test('an image under the byte limit is accepted', async () => {
    const image = await solidPng(16, 16);
    assert.ok(image.length < 1000);
    const res = await edit(app, [file('image', image)]);
    assert.equal(res.statusCode, 200, res.body);
  });
});
