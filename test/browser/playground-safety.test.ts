// The playground in headless Chromium when things are refused: images the content filter withholds,
// blocked prompts, an edit without an image; the DALL-E 2 status line; and the page's security
// headers (a strict CSP it must work under, no framing, nosniff) and icon.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import type { Page } from 'playwright-core';

import { categoriesAt } from '../../src/contract/annotations.ts';
import { solidPng, TEST_KEY } from '../helpers/app.ts';
import { ARTIFACTS, playgroundHarness, SKIP } from './harness.ts';

describe('playground page: refusals and security', { skip: SKIP }, () => {
  const pg = playgroundHarness();
  const { open, done, engine, imageFilter } = pg;

  describe('an image the content filter withholds', () => {
    before(() => (imageFilter.block = true));
    after(() => (imageFilter.block = false));

    /** Generate with `deployment` and return the card that appears; no error box, no script error. */
    async function filteredCard(page: Page, deployment: string) {
      await page.selectOption('#deployment', deployment);
      if (deployment === 'dall-e-2') await page.selectOption('#param-size', '256x256');
      await page.fill('#prompt', `a quiet harbour (${deployment})`);
      await page.click('#submit');
      const card = page.locator(`#gallery .card[data-deployment="${deployment}"]`).first();
      await card.waitFor();
      await page.waitForFunction(() => !(document.getElementById('submit') as HTMLButtonElement).disabled);
      assert.equal(await card.getAttribute('data-filtered'), 'true');
      assert.match(await card.innerText(), /Image filtered/);
      assert.match(await card.innerText(), /content filter withheld this image/);
      assert.equal(await card.locator('img').count(), 0);
      assert.equal(await page.locator('#error').isVisible(), false, await page.locator('#error').innerText());
      return card;
    }

    test('shows a readable card in dall-e-2 (operation item), dall-e-3 and gpt-image-1 (streamed) modes (screenshot in test-artifacts/)', async () => {
      const page = await open();
      for (const deployment of ['dall-e-2', 'dall-e-3', 'gpt-image-1']) await filteredCard(page, deployment);
      assert.equal(await page.locator('#gallery .card[data-filtered=true]').count(), 3);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}/playground-filtered.png`, fullPage: true });
      await done(page);
    });

    test('an edit whose result is withheld shows the same card', async () => {
      const page = await open();
      await page.click('#tab-edit');
      await page.setInputFiles('#image-file', {
        name: 'blue.png',
        mimeType: 'image/png',
        buffer: await solidPng(64, 64),
      });
      await page.locator('#mask-stage').waitFor();
      await filteredCard(page, 'gpt-image-1');
      await done(page);
    });

    test('the card names the category when the answer carries it (inner_error.content_filter_results)', async () => {
      const page = await open();
      await page.route('**/deployments/dall-e-3/images/generations*', (route) =>
        route.fulfill({
          status: 400,
          contentType: 'application/json',
          body: JSON.stringify({
            error: {
              code: 'contentFilter',
              message: 'Generated image was filtered as a result of our safety system.',
              inner_error: {
                code: 'ResponsibleAIPolicyViolation',
                content_filter_results: { ...categoriesAt('safe'), violence: { filtered: true, severity: 'medium' } },
              },
            },
          }),
        }),
      );
      const card = await filteredCard(page, 'dall-e-3');
      assert.deepEqual(await card.locator('.filters li').allInnerTexts(), ['violence (medium)']);
      await done(page);
    });
  });

  test('a blocked prompt names what blocked it', async () => {
    const page = await open();
    await page.fill('#prompt', 'a forbiddenword sign');
    await page.click('#submit');
    await page.waitForFunction(() => !document.getElementById('error')!.hidden);
    assert.equal(await page.locator('#error').getAttribute('data-code'), 'content_policy_violation');
    assert.match(await page.locator('#error').innerText(), /Filtered category: custom blocklist EASEL_BLOCKLIST\./);
    // DALL-E 2: the operation fails as a whole (its prompt was refused): an error, not an image card.
    await page.selectOption('#deployment', 'dall-e-2');
    await page.fill('#prompt', 'a forbiddenword kite');
    await page.click('#submit');
    await page.waitForFunction(
      () =>
        !document.getElementById('error')!.hidden && !(document.getElementById('submit') as HTMLButtonElement).disabled,
    );
    assert.equal(await page.locator('#error').getAttribute('data-code'), 'contentFilter');
    assert.match(await page.locator('#error').innerText(), /safety system/);
    assert.equal(await page.locator('#gallery .card').count(), 0);
    await done(page);
  });

  test('a DALL-E 2 operation reports its status in words, never "notRunning"', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'dall-e-2');
    await page.selectOption('#param-size', '256x256');
    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { statuses: string[] }).statuses = []);
      const status = document.getElementById('status')!;
      new MutationObserver(() => seen.push(status.textContent ?? '')).observe(status, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await page.fill('#prompt', 'a red kite');
    await page.click('#submit');
    await page.locator('#gallery .card[data-deployment=dall-e-2]').first().waitFor();
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    assert.ok(
      statuses.some((text) => /^(Queued|Running):/.test(text)),
      statuses.join(' | '),
    );
    assert.ok(!statuses.some((text) => /notRunning|Operation /.test(text)), statuses.join(' | '));
    await done(page);
  });

  test('Edit without an image: the brush controls stay hidden, and pressing Edit image explains and sends nothing', async () => {
    const page = await open();
    const sent: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/images/')) sent.push(request.url());
    });
    await page.click('#tab-edit');
    for (const id of ['#mask-tools', '#mask-stage']) {
      assert.equal(await page.locator(id).isVisible(), false, `${id} shows with no image loaded`);
      assert.equal(await page.locator(id).evaluate((el) => getComputedStyle(el).display), 'none');
    }
    await page.fill('#prompt', 'add a green hat');
    await page.click('#submit');
    await page.waitForFunction(() => !document.getElementById('error')!.hidden);
    assert.match(await page.locator('#error').innerText(), /Choose an image to edit first/);
    assert.deepEqual(sent, []);
    assert.equal(engine.requests.filter((r) => r.prompt === 'add a green hat').length, 0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/playground-edit-empty.png`, fullPage: true });
    // With an image, the controls show.
    await page.setInputFiles('#image-file', {
      name: 'blue.png',
      mimeType: 'image/png',
      buffer: await solidPng(64, 48),
    });
    await page.locator('#mask-tools').waitFor();
    assert.equal(await page.locator('#mask-tools').evaluate((el) => getComputedStyle(el).display), 'flex');
    await done(page);
  });

  test('security headers: a strict CSP, frame-ancestors and nosniff on the page; the page works under it and refuses inline script', async () => {
    const context = await pg.browser.newContext();
    const page = await context.newPage();
    const response = (await page.goto(`${pg.base}/`))!;
    const headers = response.headers();
    const csp = headers['content-security-policy'] ?? '';
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data: blob:",
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "object-src 'none'",
    ]) {
      assert.ok(csp.split('; ').includes(directive), `CSP lacks ${directive}: ${csp}`);
    }
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['x-frame-options'], 'DENY');
    await page.waitForSelector('body[data-ready=true]');
    // The policy is enforced: an injected inline script does not run, and the console says so.
    const refused = page.waitForEvent('console', (message) => /Content Security Policy/.test(message.text()));
    const ran = await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = '(window).injected = true';
      document.head.append(script);
      return (window as unknown as { injected?: boolean }).injected === true;
    });
    assert.equal(ran, false);
    assert.match((await refused).text(), /script-src 'self'/);
    // The page may not be framed by another page.
    const framed = await context.newPage();
    const frameRefused = framed.waitForEvent('console', (message) => /frame-ancestors/.test(message.text()));
    await framed.setContent(`<iframe id="f" src="${pg.base}/"></iframe>`);
    await frameRefused;
    await context.close();
  });

  test('the favicon is served (200, an image, cached) with nosniff; image downloads carry nosniff', async () => {
    const icon = await fetch(`${pg.base}/favicon.ico`);
    assert.equal(icon.status, 200);
    assert.equal(icon.headers.get('content-type'), 'image/png');
    assert.match(icon.headers.get('cache-control') ?? '', /max-age=\d+/);
    assert.equal(icon.headers.get('x-content-type-options'), 'nosniff');
    const bytes = Buffer.from(await icon.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(bytes.length < 4096, `${bytes.length} bytes`);
    const made = await fetch(`${pg.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a cat' }),
    });
    const image = await fetch((await made.json()).data[0].url);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('x-content-type-options'), 'nosniff');
  });
});
