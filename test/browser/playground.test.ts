// The playground page at GET / in headless Chromium against a real server with the placeholder
// engine: the three generation flows, editing with a painted mask, keys, small screens.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { describe, test } from 'node:test';

import { solidPng, TEST_KEY } from '../helpers/app.ts';
import { ARTIFACTS, playgroundHarness, SKIP } from './harness.ts';

describe('playground page', { skip: SKIP }, () => {
  const pg = playgroundHarness();
  const { open, done, engine } = pg;

  test('GET / serves the page and /playground/config.json lists the deployments with FAMILIES tables', async () => {
    const html = await fetch(`${pg.base}/`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    const config = await (await fetch(`${pg.base}/playground/config.json`)).json();
    assert.deepEqual(
      config.deployments.map((d: { name: string; family: string; status: string }) => [d.name, d.family, d.status]),
      [
        ['dall-e-2', 'dall-e-2', 'ready'],
        ['dall-e-3', 'dall-e-3', 'ready'],
        ['gpt-image-1', 'gpt-image-1', 'ready'],
      ],
    );
    assert.deepEqual(config.families['dall-e-3'].generation.size.values, ['1024x1024', '1792x1024', '1024x1792']);
    assert.equal((await fetch(`${pg.base}/playground/..%2Fhandlers%2Fplayground.ts`)).status, 404);
  });

  test('dall-e-3: the size select offers the family sizes, and a generation shows the image and revised prompt', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'dall-e-3');
    const sizes = await page.$$eval('#param-size option', (options) =>
      options.map((o) => (o as HTMLOptionElement).value),
    );
    assert.deepEqual(sizes, ['1024x1024', '1792x1024', '1024x1792']);
    assert.equal(await page.inputValue('#param-style'), 'vivid');
    await page.fill('#prompt', 'a lighthouse at dawn');
    await page.click('#submit');
    const card = page.locator('#gallery .card[data-deployment=dall-e-3]').first();
    await card.waitFor();
    assert.match(await card.locator('.revised').innerText(), /Revised prompt: .*lighthouse at dawn/);
    assert.match(await card.locator('.filters').first().innerText(), /hate: safe/);
    const src = await card.locator('img').getAttribute('src');
    assert.match(src ?? '', /\/files\/images\//);
    assert.equal(
      await card
        .locator('img')
        .evaluate((img) => (img as HTMLImageElement).decode().then(() => (img as HTMLImageElement).naturalWidth)),
      1024,
    );
    assert.equal(await card.locator('a[download]').getAttribute('href'), src);
    await done(page);
  });

  test('gpt-image-1 streams: partial images appear before the final image', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'gpt-image-1');
    await page.selectOption('#param-size', '1024x1024');
    await page.selectOption('#param-quality', 'low');
    // Record the order in which the live preview and the gallery change.
    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { seen: string[] }).seen = []);
      new MutationObserver(() => {
        if (document.querySelector('#live img[data-partial]')) seen.push('partial');
        if (document.querySelector('#gallery .card')) seen.push('final');
      }).observe(document.body, { subtree: true, childList: true });
    });
    const request = page.waitForRequest((r) => r.url().includes('/deployments/gpt-image-1/images/generations'));
    await page.fill('#prompt', 'a fox in the snow');
    await page.click('#submit');
    assert.deepEqual(JSON.parse((await request).postData() ?? '{}'), {
      prompt: 'a fox in the snow',
      size: '1024x1024',
      quality: 'low',
      stream: true,
      partial_images: 2,
    });
    const card = page.locator('#gallery .card[data-deployment=gpt-image-1]').first();
    await card.waitFor();
    assert.equal(await card.getAttribute('data-partials'), '2');
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    assert.equal(seen[0], 'partial');
    assert.ok(seen.indexOf('final') > seen.indexOf('partial'), seen.join(','));
    assert.match((await card.locator('img').getAttribute('src')) ?? '', /^blob:/);
    await done(page);
  });

  test('edit: a mask painted with the mouse reaches the server with transparent pixels and the result appears', async () => {
    const page = await open();
    await page.click('#tab-edit');
    await page.selectOption('#deployment', 'gpt-image-1');
    await page.setInputFiles('#image-file', {
      name: 'blue.png',
      mimeType: 'image/png',
      buffer: await solidPng(256, 192),
    });
    const canvas = page.locator('#mask-canvas');
    await canvas.waitFor();
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 8 });
    await page.mouse.up();
    await page.fill('#prompt', 'add a red ball');
    await page.click('#submit');
    const card = page.locator('#gallery .card[data-deployment=gpt-image-1]').first();
    await card.waitFor();
    const edit = engine.requests.filter((r) => r.operation === 'edit').at(-1)!;
    assert.equal(edit.prompt, 'add a red ball');
    assert.ok(edit.mask, 'the edit reached the engine without a mask');
    assert.deepEqual([edit.mask.width, edit.mask.height], [256, 192]);
    let transparent = 0;
    for (let i = 3; i < edit.mask.data.length; i += 4) if (edit.mask.data[i] === 0) transparent++;
    assert.ok(transparent > 500, `only ${transparent} transparent pixels`);
    assert.ok(transparent < (256 * 192) / 2, `${transparent} transparent pixels: more than the stroke`);
    const size = await card
      .locator('img')
      .evaluate((img) =>
        (img as HTMLImageElement)
          .decode()
          .then(() => [(img as HTMLImageElement).naturalWidth, (img as HTMLImageElement).naturalHeight]),
      );
    assert.deepEqual(size, [256, 192]);
    await done(page);
  });

  test('dall-e-2 uses :submit and polls the operation until the image appears', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'dall-e-2');
    await page.selectOption('#param-size', '256x256');
    const submit = page.waitForRequest((r) =>
      r.url().includes('/openai/images/generations:submit?api-version=2023-06-01-preview'),
    );
    const poll = page.waitForRequest((r) => r.url().includes('/openai/operations/images/'));
    await page.fill('#prompt', 'a red bicycle');
    await page.click('#submit');
    await submit;
    await poll;
    await page.locator('#gallery .card[data-deployment=dall-e-2]').first().waitFor();
    await done(page);
  });

  test('a wrong key shows a readable 401 message, and a blocked prompt shows the server message', async () => {
    const page = await open({ key: 'not-the-key' });
    await page.fill('#prompt', 'a lighthouse');
    await page.click('#submit');
    await page.locator('#error').waitFor();
    assert.equal(await page.locator('#error').getAttribute('data-code'), '401');
    assert.match(await page.locator('#error').innerText(), /did not accept the API key/);

    await page.fill('#api-key', TEST_KEY);
    await page.click('#key-form button[type=submit]');
    await page.selectOption('#deployment', 'dall-e-3');
    await page.fill('#prompt', 'a forbiddenword sign');
    await page.click('#submit');
    await page.waitForFunction(() => !document.getElementById('error')!.hidden);
    assert.equal(await page.locator('#error').getAttribute('data-code'), 'content_policy_violation');
    // Azure's error.message, not the JSON envelope.
    assert.doesNotMatch(await page.locator('#error').innerText(), /[{}"]/);
    await done(page);
  });

  test('fits a 390 px wide phone screen without horizontal scrolling (screenshot in test-artifacts/)', async () => {
    const page = await open({ viewport: { width: 390, height: 844 } });
    await page.selectOption('#deployment', 'dall-e-3');
    await page.fill('#prompt', 'a lighthouse at dawn');
    await page.click('#submit');
    await page
      .locator('#gallery .card img')
      .first()
      .evaluate((img) => (img as HTMLImageElement).decode());
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `page is ${width} px wide`);
    await page.click('#tab-edit');
    await page.locator('#gallery .card button', { hasText: 'Edit' }).first().click();
    await page.locator('#mask-stage').waitFor();
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/playground.png`, fullPage: true });
    await done(page);
  });

  test('a key typed but not saved is used by Generate, and kept for the next visit', async () => {
    const page = await open({ save: false });
    assert.equal(
      await page.inputValue('#deployment'),
      'dall-e-3',
      'the default deployment is dall-e-3, not the preview-only dall-e-2',
    );
    await page.fill('#prompt', 'a lighthouse at dawn');
    await page.click('#submit');
    const card = page.locator('#gallery .card[data-deployment=dall-e-3]').first();
    await card.waitFor();
    assert.equal(await page.locator('#error').isVisible(), false);
    assert.equal(
      await card
        .locator('img')
        .evaluate((img) => (img as HTMLImageElement).decode().then(() => (img as HTMLImageElement).naturalWidth)),
      1024,
    );
    assert.equal(await page.evaluate(() => localStorage.getItem('easel.apiKey')), TEST_KEY);
    assert.equal(await page.locator('#key-state').innerText(), 'saved in this browser');
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    assert.equal(await page.inputValue('#api-key'), TEST_KEY);
    await done(page);
  });

  test('a key changed in the field replaces the saved one on the next request, without Save', async () => {
    const page = await open({ key: 'not-the-key' });
    await page.fill('#api-key', TEST_KEY);
    await page.fill('#prompt', 'a lighthouse');
    await page.click('#submit');
    await page.locator('#gallery .card').first().waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('easel.apiKey')), TEST_KEY);
    await done(page);
  });
});
