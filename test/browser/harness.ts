// What the browser tests share: a real server with the placeholder engine (recording what reached
// it) and a switchable image filter, headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), and pages opened on the playground whose CSP violations are collected.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before } from 'node:test';

import { type Browser, chromium, type Page } from 'playwright-core';

import { categoriesAt } from '../../src/contract/annotations.ts';
import type { ImageRequest } from '../../src/contract/request.ts';
import type { EngineOutput, EngineRunContext } from '../../src/engines/engine.ts';
import { PlaceholderEngine } from '../../src/engines/placeholder/index.ts';
import type { ImageFilter } from '../../src/safety/index.ts';
import { startListening } from '../e2e/helpers.ts';
import { TEST_KEY } from '../helpers/app.ts';

/** The placeholder engine, keeping every request it ran: what reached the server from the page. */
export class RecordingEngine extends PlaceholderEngine {
  readonly requests: ImageRequest[] = [];
  override async run(request: ImageRequest, context?: EngineRunContext): Promise<EngineOutput> {
    this.requests.push(request);
    return super.run(request, context);
  }
}

/** An image filter the tests switch: it passes every image, or withholds every one as sexual/high. */
export class SwitchableImageFilter implements ImageFilter {
  readonly name = 'switchable';
  block = false;
  async check() {
    return this.block
      ? { blocked: true, results: { ...categoriesAt('safe'), sexual: { filtered: true, severity: 'high' as const } } }
      : { blocked: false, results: categoriesAt('safe') };
  }
}

const CHROMIUM = '/usr/bin/chromium';
const MISSING = `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium fonts-dejavu-core) to run the browser tests`;
// Locally the browser tests skip with that message; in CI (.ci/run installs Chromium) they fail.
if (!existsSync(CHROMIUM) && process.env.CI) throw new Error(MISSING);
export const SKIP = existsSync(CHROMIUM) ? false : MISSING;
export const ARTIFACTS = 'test-artifacts';

export interface Harness {
  readonly base: string;
  readonly browser: Browser;
  readonly engine: RecordingEngine;
  readonly imageFilter: SwitchableImageFilter;
  /** A fresh page on the playground with `key` typed in and (unless `save` is false) saved. */
  open(options?: { key?: string; save?: boolean; viewport?: { width: number; height: number } }): Promise<Page>;
  /** Close the page, after checking that nothing it did broke its Content-Security-Policy. */
  done(page: Page): Promise<void>;
}

/** Call inside a describe(): starts the server and the browser before its tests, ends them after. */
export function playgroundHarness(): Harness {
  let server: Awaited<ReturnType<typeof startListening>>;
  let browser: Browser;
  const engine = new RecordingEngine();
  const imageFilter = new SwitchableImageFilter();
  /** What each page's console said about its Content-Security-Policy (Chromium logs every violation). */
  const cspMessages = new Map<Page, string[]>();

  before(async () => {
    server = await startListening({ env: { EASEL_BLOCKLIST: 'forbiddenword' }, engine, imageFilter });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // CI runs as root; the rest keeps Chromium off the (closed) network.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.app.dispose();
  });

  return {
    get base() {
      return server.base;
    },
    get browser() {
      return browser;
    },
    engine,
    imageFilter,
    async open(options = {}) {
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
    },
    async done(page) {
      assert.deepEqual(cspMessages.get(page), [], 'the page violated its Content-Security-Policy');
      await page.context().close();
    },
  };
}
