// The default image filter: nsfwjs's bundled MobileNetV2, loaded from the npm package with no
// network, its five classes mapped to Azure's `sexual` severity, and its failure policy.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { pino } from 'pino';

import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { RawImage } from '../../src/contract/request.ts';
import type { Engine } from '../../src/engines/engine.ts';
import { PlaceholderEngine } from '../../src/engines/placeholder/index.ts';
import {
  type NsfwClassifier,
  NsfwImageFilter,
  type NsfwProbabilities,
  PLACEHOLDER_NOT_APPLICABLE,
  RealEnginesImageFilter,
  SafetyPolicy,
  sexualSeverity,
  WorkerNsfwClassifier,
} from '../../src/safety/index.ts';
import { startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { assertError, assertNothingStored, generationsUrl, pollOperation, postJson, submit } from '../http/helpers.ts';

const probs = (p: Partial<NsfwProbabilities>): NsfwProbabilities => ({
  Drawing: 0,
  Hentai: 0,
  Neutral: 0,
  Porn: 0,
  Sexy: 0,
  ...p,
});
const fixed = (p: NsfwProbabilities): NsfwClassifier => ({ classify: async () => p, close: async () => {} });
const throwing: NsfwClassifier = {
  classify: async () => {
    throw new Error('boom');
  },
  close: async () => {},
};
const gray: RawImage = { width: 64, height: 48, channels: 4, data: Buffer.alloc(64 * 48 * 4, 160) };
const context = { deployment: 'dall-e-3', moderation: 'auto' as const };
const policy = new SafetyPolicy({ threshold: 'medium' });

describe('the bundled nsfwjs model', () => {
  const classifier = new WorkerNsfwClassifier();
  after(() => classifier.close());

  test('loads from the package offline and reads a placeholder-like image as safe', async () => {
    const p = await classifier.classify(gray);
    const sum = Object.values(p).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to 1, got ${sum}`);
    assert.equal(sexualSeverity(p), 'safe');
    const filter = new NsfwImageFilter({ classifier, policy, onFailure: 'block' });
    const verdict = await filter.check(
      { width: 32, height: 32, channels: 3, data: Buffer.alloc(32 * 32 * 3, 30) },
      context,
    );
    assert.equal(verdict.blocked, false);
    assert.equal(verdict.results.sexual.severity, 'safe');
    assert.equal(verdict.results.error, undefined);
  });
});

test('sexual severity follows SEXUAL_SEVERITY_TABLE', () => {
  const cases: [Partial<NsfwProbabilities>, string][] = [
    [{ Neutral: 0.9, Drawing: 0.1 }, 'safe'],
    [{ Drawing: 0.85, Hentai: 0.15 }, 'safe'],
    [{ Neutral: 0.75, Porn: 0.2, Sexy: 0.05 }, 'low'],
    [{ Neutral: 0.5, Sexy: 0.5 }, 'low'],
    [{ Neutral: 0.5, Porn: 0.3, Hentai: 0.2 }, 'medium'],
    [{ Neutral: 0.15, Sexy: 0.85 }, 'medium'],
    [{ Sexy: 1 }, 'medium'],
    [{ Porn: 0.5, Hentai: 0.3, Sexy: 0.2 }, 'high'],
    [{ Hentai: 0.95, Drawing: 0.05 }, 'high'],
  ];
  for (const [p, severity] of cases) assert.equal(sexualSeverity(probs(p)), severity, JSON.stringify(p));
});

describe('NsfwImageFilter', () => {
  test('blocks at the deployment threshold; moderation low blocks only high; other categories read safe', async () => {
    const medium = new NsfwImageFilter({
      classifier: fixed(probs({ Porn: 0.6, Neutral: 0.4 })),
      policy: new SafetyPolicy({ threshold: 'medium' }, new Map([['lenient', { threshold: 'high' }]])),
      onFailure: 'block',
    });
    const verdict = await medium.check(gray, context);
    assert.equal(verdict.blocked, true);
    assert.deepEqual(verdict.results.sexual, { filtered: true, severity: 'medium' });
    for (const c of ['hate', 'violence', 'self_harm'] as const)
      assert.deepEqual(verdict.results[c], { filtered: false, severity: 'safe' });
    assert.equal((await medium.check(gray, { deployment: 'lenient', moderation: 'auto' })).blocked, false);
    const low = await medium.check(gray, { deployment: 'gpt-image-1', moderation: 'low' });
    assert.equal(low.blocked, false);
    assert.deepEqual(low.results.sexual, { filtered: false, severity: 'medium' });
    const high = new NsfwImageFilter({
      classifier: fixed(probs({ Porn: 0.95, Neutral: 0.05 })),
      policy,
      onFailure: 'block',
    });
    assert.equal((await high.check(gray, { deployment: 'gpt-image-1', moderation: 'low' })).blocked, true);
  });

  test('a classifier that throws blocks under policy block and passes under allow, with the error annotation', async () => {
    const blocking = await new NsfwImageFilter({ classifier: throwing, policy, onFailure: 'block' }).check(
      gray,
      context,
    );
    assert.equal(blocking.blocked, true);
    assert.equal(blocking.results.error?.code, 'content_filter_error');
    assert.match(blocking.results.error!.message, /boom/);
    const allowing = await new NsfwImageFilter({ classifier: throwing, policy, onFailure: 'allow' }).check(
      gray,
      context,
    );
    assert.equal(allowing.blocked, false);
    assert.equal(allowing.results.error?.code, 'content_filter_error');
  });

  test('a classifier that times out counts as a failure', async () => {
    const classifier = new WorkerNsfwClassifier({ timeoutMs: 1 });
    try {
      const verdict = await new NsfwImageFilter({ classifier, policy, onFailure: 'block' }).check(gray, context);
      assert.equal(verdict.blocked, true);
      assert.match(verdict.results.error!.message, /no answer within 1 ms/);
    } finally {
      await classifier.close();
    }
  });
});

describe('through HTTP, a classifier that rates every image explicit', () => {
  let app: TestApp;
  before(async () => {
    const classifier = fixed(probs({ Porn: 0.9, Neutral: 0.1 }));
    app = await startTestApp({ imageFilter: new NsfwImageFilter({ classifier, policy, onFailure: 'block' }) });
  });
  after(() => app.dispose());

  test('dall-e-3 answers 400 contentFilter naming the filter, model and category, and stores nothing', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat' });
    assertError(res, 400, 'contentFilter', null);
    assert.equal(
      res.json().error.message,
      'Generated image was filtered as a result of our safety system: the image classifier (nsfwjs MobileNetV2) rated it sexual: high.',
    );
    await assertNothingStored(app);
  });

  test('a DALL-E 2 operation gets the per-item contentFilter error naming the filter and category, and stores nothing', async () => {
    const id = await submit(app, { prompt: 'a cat', size: '256x256' });
    const { body } = await pollOperation(app, id);
    assert.equal(body.status, 'succeeded');
    assert.equal(body.result.data[0].error.code, 'contentFilter');
    assert.match(
      body.result.data[0].error.message,
      /: the image classifier \(nsfwjs MobileNetV2\) rated it sexual: high\.$/,
    );
    await assertNothingStored(app);
  });
});

describe('placeholder pictures and the image classifier', () => {
  const explicit = () =>
    new NsfwImageFilter({ classifier: fixed(probs({ Porn: 0.9, Neutral: 0.1 })), policy, onFailure: 'block' });

  test("RealEnginesImageFilter: a placeholder picture passes unclassified and says so; a real engine's image is classified", async () => {
    const filter = new RealEnginesImageFilter(explicit());
    const placeholder = await filter.check(gray, { ...context, engine: 'placeholder' });
    assert.equal(placeholder.blocked, false);
    assert.deepEqual(placeholder.results.image_filter, { ran: false, reason: PLACEHOLDER_NOT_APPLICABLE });
    assert.deepEqual(placeholder.results.sexual, { filtered: false, severity: 'safe' });
    const real = await filter.check(gray, { ...context, engine: 'diffusion' });
    assert.equal(real.blocked, true);
    assert.equal(real.reason, 'the image classifier (nsfwjs MobileNetV2) rated it sexual: high');
    assert.equal(real.results.image_filter, undefined);
  });

  test('the configured filter: placeholder pictures skip it by default; safety.classifyPlaceholderImages runs it on them too', async () => {
    const byDefault = await startTestApp();
    const forced = await startTestApp({ config: { safety: { classifyPlaceholderImages: true } } });
    try {
      assert.ok(byDefault.services.imageFilter instanceof RealEnginesImageFilter);
      assert.ok(forced.services.imageFilter instanceof NsfwImageFilter);
      assert.equal(
        loadConfig({ EASEL_DATA_DIR: byDefault.dataDir, EASEL_CLASSIFY_PLACEHOLDER_IMAGES: 'true' }).safety
          .classifyPlaceholderImages,
        true,
      );
    } finally {
      await byDefault.dispose();
      await forced.dispose();
    }
  });

  test('through HTTP on the placeholder engine: dall-e-3 and dall-e-2 images carry the note, none is withheld', async () => {
    const app = await startTestApp({ imageFilter: new RealEnginesImageFilter(explicit()) });
    try {
      const res = await postJson(app, generationsUrl('dall-e-3'), {
        prompt: 'a snowy village at night',
        response_format: 'b64_json',
      });
      assert.equal(res.statusCode, 200, res.body);
      const annotations = res.json().data[0].content_filter_results;
      assert.deepEqual(annotations.image_filter, { ran: false, reason: PLACEHOLDER_NOT_APPLICABLE });
      assert.equal(annotations.sexual.filtered, false);
      const id = await submit(app, { prompt: 'a lighthouse at sunset', size: '256x256' });
      const { body } = await pollOperation(app, id);
      assert.equal(body.status, 'succeeded');
      assert.equal(body.result.data[0].error, undefined);
      assert.equal(typeof body.result.data[0].url, 'string');
    } finally {
      await app.dispose();
    }
  });

  test("a real engine's withheld image: the answer and the server log name the filter, model and category", async () => {
    const lines: string[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), 'easel-filter-log-'));
    const config = loadConfig({ EASEL_DATA_DIR: dataDir, EASEL_API_KEYS: TEST_KEY });
    const placeholder = new PlaceholderEngine();
    // The placeholder's pixels under another engine's name: what the runner sees of a real engine.
    const engine: Engine = { name: 'diffusion', run: (request, options) => placeholder.run(request, options) };
    const app = await createApp(config, {
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      imageFilter: new RealEnginesImageFilter(explicit()),
      engine,
    });
    try {
      const res = await app.server.inject({
        method: 'POST',
        url: generationsUrl('dall-e-3'),
        headers: { 'api-key': TEST_KEY },
        payload: { prompt: 'a cat' },
      });
      assert.equal(res.statusCode, 400);
      assert.match(res.json().error.message, /the image classifier \(nsfwjs MobileNetV2\) rated it sexual: high\.$/);
      const logged = lines
        .map((l) => JSON.parse(l) as { msg: string; filter?: string; reason?: string; deployment?: string })
        .find((l) => l.msg.startsWith('generated image withheld'));
      assert.ok(logged, lines.join(''));
      assert.equal(
        logged.msg,
        'generated image withheld: the image classifier (nsfwjs MobileNetV2) rated it sexual: high',
      );
      assert.equal(logged.filter, 'nsfwjs');
      assert.equal(logged.deployment, 'dall-e-3');
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('through HTTP, a classifier that fails', () => {
  let blockApp: TestApp;
  let allowApp: TestApp;
  before(async () => {
    blockApp = await startTestApp({
      imageFilter: new NsfwImageFilter({ classifier: throwing, policy, onFailure: 'block' }),
    });
    allowApp = await startTestApp({
      imageFilter: new NsfwImageFilter({ classifier: throwing, policy, onFailure: 'allow' }),
    });
  });
  after(async () => {
    await blockApp.dispose();
    await allowApp.dispose();
  });

  test('policy block: dall-e-3 answers 400 contentFilter and stores nothing', async () => {
    assertError(await postJson(blockApp, generationsUrl('dall-e-3'), { prompt: 'a cat' }), 400, 'contentFilter', null);
    await assertNothingStored(blockApp);
  });

  test('policy allow: the image is returned with content_filter_results.error', async () => {
    const res = await postJson(allowApp, generationsUrl('dall-e-3'), { prompt: 'a cat', response_format: 'b64_json' });
    assert.equal(res.statusCode, 200);
    const item = res.json().data[0];
    assert.equal(item.content_filter_results.error.code, 'content_filter_error');
  });
});

describe('the default app', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp();
  });
  after(() => app.dispose());

  test('uses the nsfwjs filter for real engines; a placeholder image passes unclassified, saying so', async () => {
    assert.equal(app.services.imageFilter.name, 'nsfwjs');
    const res = await postJson(app, generationsUrl('dall-e-3'), {
      prompt: 'a lighthouse at dusk',
      response_format: 'b64_json',
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json().data[0].content_filter_results.sexual, { filtered: false, severity: 'safe' });
    assert.equal(res.json().data[0].content_filter_results.image_filter.ran, false);
  });
});
