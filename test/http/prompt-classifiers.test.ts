// Classifiers and blocklists as an operator configures them, seen through the API: an
// OpenAI-style moderation endpoint (a local fake) adds its severities to the term lists', its
// failure policy decides per deployment, and a blocklist file edited while the server runs applies
// to the next request.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { PassImageFilter } from '../../src/safety/index.ts';
import { writeTextClassifier } from '../../tools/model-builder/text-classifier.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, assertNothingStored, generationsUrl, pollOperation, postJson, submit } from './helpers.ts';

/** Moderation answers by keyword: "zebra" is hateful, "giraffe" makes the service fail. */
function fakeModeration(): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const { input } = JSON.parse(body) as { input: string };
      requests.push(input);
      if (input.includes('giraffe')) {
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error' } }));
        return;
      }
      const hate = input.includes('zebra') ? 0.93 : 0.01;
      const scores = {
        hate,
        'hate/threatening': 0,
        sexual: 0.01,
        'sexual/minors': 0,
        violence: 0.02,
        'violence/graphic': 0,
        'self-harm': 0,
        harassment: 0.4,
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: 'modr-1',
          model: 'fake',
          results: [{ flagged: hate > 0.5, categories: {}, category_scores: scores }],
        }),
      );
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/moderations`, requests }),
    ),
  );
}

describe('a moderation endpoint beside the term lists', () => {
  let app: TestApp;
  let fake: Awaited<ReturnType<typeof fakeModeration>>;
  before(async () => {
    fake = await fakeModeration();
    // Prompt filtering only: the image classifier is exercised in nsfw-image-filter.test.ts.
    app = await startTestApp({
      imageFilter: new PassImageFilter(),
      config: {
        safety: {
          classifiers: [
            { id: 'strict', kind: 'openai-moderation', url: fake.url, timeoutMs: 2000, onFailure: 'block' },
            { id: 'lenient', kind: 'openai-moderation', url: fake.url, timeoutMs: 2000, onFailure: 'allow' },
          ],
        },
        deployments: [
          { name: 'dall-e-3', model: 'dall-e-3', engine: 'placeholder', safety: { classifiers: ['strict'] } },
          { name: 'open-dall-e-3', model: 'dall-e-3', engine: 'placeholder', safety: { classifiers: ['lenient'] } },
          { name: 'dall-e-2', model: 'dall-e-2', engine: 'placeholder', safety: { classifiers: ['strict'] } },
          { name: 'plain', model: 'dall-e-3', engine: 'placeholder', safety: { classifiers: [] } },
        ],
      },
    });
  });
  after(async () => {
    await app.dispose();
    fake.server.close();
  });

  test("the endpoint's severity blocks a prompt the term lists pass, and shows in inner_error", async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a zebra in a meadow' });
    const error = assertError(res, 400, 'content_policy_violation', null);
    const results = (error.inner_error as { content_filter_results: Record<string, unknown> }).content_filter_results;
    assert.deepEqual(results.hate, { filtered: true, severity: 'high' });
    assert.deepEqual(results.violence, { filtered: false, severity: 'safe' });
    assert.equal(results.error, undefined);
    assert.ok(fake.requests.includes('a zebra in a meadow'));
    await assertNothingStored(app);
  });

  test('a benign prompt passes with the combined scores in prompt_filter_results', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), {
      prompt: 'a soldier with a sword',
      response_format: 'b64_json',
    });
    assert.equal(res.statusCode, 200, res.body);
    const results = res.json().data[0].prompt_filter_results;
    assert.deepEqual(results.violence, { filtered: false, severity: 'low' }, 'from the term lists');
    assert.deepEqual(results.hate, { filtered: false, severity: 'safe' });
    assert.equal(results.error, undefined);
  });

  test('the endpoint failing under "block": 400 with content_filter_error in inner_error', async () => {
    const error = assertError(
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a giraffe' }),
      400,
      'content_policy_violation',
      null,
    );
    const results = (error.inner_error as { content_filter_results: { error: { code: string; message: string } } })
      .content_filter_results;
    assert.equal(results.error.code, 'content_filter_error');
    assert.match(results.error.message, /classifier "strict" failed: .*HTTP 503/);
  });

  test('the endpoint failing under "allow": 200 with the error in prompt_filter_results', async () => {
    const res = await postJson(app, generationsUrl('open-dall-e-3'), {
      prompt: 'a giraffe',
      response_format: 'b64_json',
    });
    assert.equal(res.statusCode, 200, res.body);
    const results = res.json().data[0].prompt_filter_results;
    assert.equal(results.error.code, 'content_filter_error');
    assert.match(results.error.message, /not fully filtered.*"lenient" failed/);
  });

  test('a DALL-E 2 operation refused by the endpoint ends failed with contentFilter', async () => {
    const { body } = await pollOperation(app, await submit(app, { prompt: 'a zebra kite' }));
    assert.equal(body.status, 'failed');
    assert.equal(body.error.code, 'contentFilter');
  });

  test('a deployment that names no classifiers never calls the endpoint', async () => {
    const before = fake.requests.length;
    assert.equal(
      (await postJson(app, generationsUrl('plain'), { prompt: 'a zebra', response_format: 'b64_json' })).statusCode,
      200,
    );
    assert.equal(fake.requests.length, before);
  });
});

describe('an ONNX text classifier from a local folder', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp();
    await app.dispose();
    const folder = join(app.dataDir + '-models', 'tiny-moderation');
    mkdirSync(folder, { recursive: true });
    // A toxic-bert-like label set: "threat" reads as violence through the built-in aliases.
    await writeTextClassifier(folder, {
      labels: ['toxic', 'threat', 'identity_hate'],
      problemType: 'multi_label_classification',
      weights: { menace: { threat: 4 }, quokka: { identity_hate: -0.4 } },
      defaultLogit: -6,
      words: ['a', 'menace', 'quokka', 'cat'],
    });
    app = await startTestApp({
      imageFilter: new PassImageFilter(),
      config: {
        safety: {
          classifiers: [
            { id: 'tiny', kind: 'onnx', folder, timeoutMs: 10_000, onFailure: 'block' },
            {
              id: 'broken',
              kind: 'onnx',
              folder: join(folder, '..', 'no-such-model'),
              timeoutMs: 10_000,
              onFailure: 'allow',
            },
          ],
        },
      },
    });
  });
  after(() => app.dispose());

  test('/readyz shows each classifier: loaded, or unavailable with its reason (no full path)', async () => {
    await until(async () => {
      const body = (await app.server.inject({ method: 'GET', url: '/readyz' })).json();
      return body.classifiers.tiny.status === 'loading' || body.classifiers.broken.status === 'loading' ? null : true;
    });
    const body = (await app.server.inject({ method: 'GET', url: '/readyz' })).json();
    assert.equal(body.status, 'ready', 'a classifier that cannot load does not make the service unready');
    assert.deepEqual(body.classifiers.tiny, { kind: 'onnx', status: 'ready' });
    assert.equal(body.classifiers.broken.status, 'unavailable');
    assert.match(body.classifiers.broken.reason, /no-such-model/);
    assert.ok(!body.classifiers.broken.reason.includes(app.dataDir), body.classifiers.broken.reason);
  });

  test('a classifier that failed to load follows its failure policy on every prompt', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a cat', response_format: 'b64_json' });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.json().data[0].prompt_filter_results.error.message, /classifier "broken" failed/);
  });

  test("the model's labels become Azure's categories and block at the threshold", async () => {
    const error = assertError(
      await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a menace' }),
      400,
      'content_policy_violation',
      null,
    );
    const results = (error.inner_error as { content_filter_results: Record<string, unknown> }).content_filter_results;
    assert.deepEqual(results.violence, { filtered: true, severity: 'high' }, 'sigmoid(4) = 0.98');
    const low = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a quokka', response_format: 'b64_json' });
    assert.equal(low.statusCode, 200, low.body);
    assert.deepEqual(
      low.json().data[0].prompt_filter_results.hate,
      { filtered: false, severity: 'low' },
      'sigmoid(-0.4) = 0.40: low (0.3 ≤ p < 0.5)',
    );
  });
});

describe('a blocklist file edited while the server runs', () => {
  let app: TestApp;
  let file: string;
  before(async () => {
    app = await startTestApp();
    await app.dispose();
    file = join(app.dataDir + '-list.txt');
    writeFileSync(file, '# house terms\n');
    app = await startTestApp({ config: { safety: { blocklists: [{ id: 'house', file }] } } });
  });
  after(() => app.dispose());

  test('a term added to the file refuses the next request, and removing it serves again', async () => {
    const ask = () =>
      postJson(app, generationsUrl('dall-e-3'), { prompt: 'a periwinkle teapot', response_format: 'b64_json' });
    assert.equal((await ask()).statusCode, 200);
    writeFileSync(file, '# house terms\nperiwinkle\n');
    const refused = await until(async () => ((await ask()).statusCode === 400 ? ask() : null));
    const error = assertError(refused, 400, 'content_policy_violation', null);
    assert.deepEqual(
      (error.inner_error as { content_filter_results: { custom_blocklists: unknown } }).content_filter_results
        .custom_blocklists,
      {
        filtered: true,
        details: [{ id: 'house', filtered: true }],
      },
    );
    writeFileSync(file, '# house terms\n');
    await until(async () => ((await ask()).statusCode === 200 ? true : null));
  });
});

async function until<T>(probe: () => Promise<T | null>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
