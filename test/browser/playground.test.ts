// The playground page at GET / in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against a real server with the placeholder engine.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { categoriesAt } from '../../src/contract/annotations.ts';
import type { ImageRequest } from '../../src/contract/request.ts';
import type { EngineOutput, EngineRunContext } from '../../src/engines/engine.ts';
import { PlaceholderEngine } from '../../src/engines/placeholder/index.ts';
import type { ImageFilter } from '../../src/safety/index.ts';
import { solidPng, TEST_KEY } from '../helpers/app.ts';
import { startListening } from '../e2e/helpers.ts';

/** The placeholder engine, keeping every request it ran: what reached the server from the page. */
class RecordingEngine extends PlaceholderEngine {
  readonly requests: ImageRequest[] = [];
  override async run(request: ImageRequest, context?: EngineRunContext): Promise<EngineOutput> {
    this.requests.push(request);
    return super.run(request, context);
  }
}

/** An image filter the tests switch: it passes every image, or withholds every one as sexual/high. */
const imageFilter = {
  name: 'switchable',
  block: false as boolean,
  async check() {
    return this.block
      ? { blocked: true, results: { ...categoriesAt('safe'), sexual: { filtered: true, severity: 'high' as const } } }
      : { blocked: false, results: categoriesAt('safe') };
  },
} satisfies ImageFilter & { block: boolean };

const CHROMIUM = '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium fonts-dejavu-core) to run the browser tests`;
const ARTIFACTS = 'test-artifacts';

describe('playground page', { skip: SKIP }, () => {
  let server: Awaited<ReturnType<typeof startListening>>;
  let browser: Browser;
  const engine = new RecordingEngine();

  before(async () => {
    server = await startListening({ env: { EASEL_BLOCKLIST: 'forbiddenword' }, engine, imageFilter });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // CI runs as root; the rest keeps Chromium off the (closed) network.
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.app.dispose();
  });

  /** What each page's console said about its Content-Security-Policy (Chromium logs every violation). */
  const cspMessages = new Map<Page, string[]>();

  /** A fresh page on the playground with `key` typed in and (unless `save` is false) saved. */
  async function open(options: { key?: string; save?: boolean; viewport?: { width: number; height: number } } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (error) => assert.fail(`page error: ${error.message}`));
    const csp: string[] = [];
    cspMessages.set(page, csp);
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) csp.push(message.text());
    });
    await page.goto(`${server.base}/`);
    await page.waitForSelector('body[data-ready=true]');
    await page.fill('#api-key', options.key ?? TEST_KEY);
    if (options.save !== false) await page.click('#key-form button[type=submit]');
    return page;
  }

  /** Close the page, after checking that nothing it did broke its Content-Security-Policy. */
  async function done(page: Page) {
    assert.deepEqual(cspMessages.get(page), [], 'the page violated its Content-Security-Policy');
    await page.context().close();
  }

  test('GET / serves the page and /playground/config.json lists the deployments with FAMILIES tables', async () => {
    const html = await fetch(`${server.base}/`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    const config = await (await fetch(`${server.base}/playground/config.json`)).json();
    assert.deepEqual(
      config.deployments.map((d: { name: string; family: string; status: string }) => [d.name, d.family, d.status]),
      [['dall-e-2', 'dall-e-2', 'ready'], ['dall-e-3', 'dall-e-3', 'ready'], ['gpt-image-1', 'gpt-image-1', 'ready']],
    );
    assert.deepEqual(config.families['dall-e-3'].generation.size.values, ['1024x1024', '1792x1024', '1024x1792']);
    assert.equal((await fetch(`${server.base}/playground/..%2Fhandlers%2Fplayground.ts`)).status, 404);
  });

  test('dall-e-3: the size select offers the family sizes, and a generation shows the image and revised prompt', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'dall-e-3');
    const sizes = await page.$$eval('#param-size option', (options) => options.map((o) => (o as HTMLOptionElement).value));
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
    assert.equal(await card.locator('img').evaluate((img) => (img as HTMLImageElement).decode().then(() => (img as HTMLImageElement).naturalWidth)), 1024);
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
    assert.deepEqual(JSON.parse((await request).postData() ?? '{}'), { prompt: 'a fox in the snow', size: '1024x1024', quality: 'low', stream: true, partial_images: 2 });
    const card = page.locator('#gallery .card[data-deployment=gpt-image-1]').first();
    await card.waitFor();
    assert.equal(await card.getAttribute('data-partials'), '2');
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    assert.equal(seen[0], 'partial');
    assert.ok(seen.indexOf('final') > seen.indexOf('partial'), seen.join(','));
    assert.match(await card.locator('img').getAttribute('src') ?? '', /^blob:/);
    await done(page);
  });

  test('edit: a mask painted with the mouse reaches the server with transparent pixels and the result appears', async () => {
    const page = await open();
    await page.click('#tab-edit');
    await page.selectOption('#deployment', 'gpt-image-1');
    await page.setInputFiles('#image-file', { name: 'blue.png', mimeType: 'image/png', buffer: await solidPng(256, 192) });
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
    const size = await card.locator('img').evaluate((img) => (img as HTMLImageElement).decode().then(() => [(img as HTMLImageElement).naturalWidth, (img as HTMLImageElement).naturalHeight]));
    assert.deepEqual(size, [256, 192]);
    await done(page);
  });

  test('dall-e-2 uses :submit and polls the operation until the image appears', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'dall-e-2');
    await page.selectOption('#param-size', '256x256');
    const submit = page.waitForRequest((r) => r.url().includes('/openai/images/generations:submit?api-version=2023-06-01-preview'));
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
    await page.locator('#gallery .card img').first().evaluate((img) => (img as HTMLImageElement).decode());
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
    assert.equal(await page.inputValue('#deployment'), 'dall-e-3', 'the default deployment is dall-e-3, not the preview-only dall-e-2');
    await page.fill('#prompt', 'a lighthouse at dawn');
    await page.click('#submit');
    const card = page.locator('#gallery .card[data-deployment=dall-e-3]').first();
    await card.waitFor();
    assert.equal(await page.locator('#error').isVisible(), false);
    assert.equal(await card.locator('img').evaluate((img) => (img as HTMLImageElement).decode().then(() => (img as HTMLImageElement).naturalWidth)), 1024);
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
      await page.setInputFiles('#image-file', { name: 'blue.png', mimeType: 'image/png', buffer: await solidPng(64, 64) });
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
              inner_error: { code: 'ResponsibleAIPolicyViolation', content_filter_results: { ...categoriesAt('safe'), violence: { filtered: true, severity: 'medium' } } },
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
    await done(page);
  });

  test('a DALL-E 2 operation reports its status in words, never "notRunning"', async () => {
    const page = await open();
    await page.selectOption('#deployment', 'dall-e-2');
    await page.selectOption('#param-size', '256x256');
    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { statuses: string[] }).statuses = []);
      const status = document.getElementById('status')!;
      new MutationObserver(() => seen.push(status.textContent ?? '')).observe(status, { childList: true, characterData: true, subtree: true });
    });
    await page.fill('#prompt', 'a red kite');
    await page.click('#submit');
    await page.locator('#gallery .card[data-deployment=dall-e-2]').first().waitFor();
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    assert.ok(statuses.some((text) => /^(Queued|Running):/.test(text)), statuses.join(' | '));
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
    await page.setInputFiles('#image-file', { name: 'blue.png', mimeType: 'image/png', buffer: await solidPng(64, 48) });
    await page.locator('#mask-tools').waitFor();
    assert.equal(await page.locator('#mask-tools').evaluate((el) => getComputedStyle(el).display), 'flex');
    await done(page);
  });

  test('security headers: a strict CSP, frame-ancestors and nosniff on the page; the page works under it and refuses inline script', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const response = (await page.goto(`${server.base}/`))!;
    const headers = response.headers();
    const csp = headers['content-security-policy'] ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"]) {
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
    await framed.setContent(`<iframe id="f" src="${server.base}/"></iframe>`);
    await frameRefused;
    await context.close();
  });

  test('the favicon is served (200, an image, cached) with nosniff; image downloads carry nosniff', async () => {
    const icon = await fetch(`${server.base}/favicon.ico`);
    assert.equal(icon.status, 200);
    assert.equal(icon.headers.get('content-type'), 'image/png');
    assert.match(icon.headers.get('cache-control') ?? '', /max-age=\d+/);
    assert.equal(icon.headers.get('x-content-type-options'), 'nosniff');
    const bytes = Buffer.from(await icon.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(bytes.length < 4096, `${bytes.length} bytes`);
    const made = await fetch(`${server.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a cat' }),
    });
    const image = await fetch((await made.json()).data[0].url);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('x-content-type-options'), 'nosniff');
  });
});
