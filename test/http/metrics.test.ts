// GET /metrics: Prometheus' text format, from the app's own registry, with labels that are route
// patterns and configured deployment names only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { categoriesAt } from '../../src/contract/annotations.ts';
import type { ImageFilter } from '../../src/safety/index.ts';
import { startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { generationsUrl, postJson } from './helpers.ts';

const GENERATIONS_ROUTE = '/openai/deployments/:deployment/images/generations';

async function scrape(app: TestApp): Promise<string> {
  const res = await app.server.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return res.body;
}

/** The value of one series, or undefined when it does not exist; `labels` exactly as printed. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  let app: TestApp;
  const prompt = 'a very particular lighthouse called Zanzibar-9';
  before(async () => {
    app = await startTestApp();
  });
  after(() => app.dispose());

  test('needs no key and answers Prometheus text with process metrics under easel_', async () => {
    const text = await scrape(app);
    assert.match(text, /^# HELP easel_process_cpu_seconds_total /m);
    assert.match(text, /^easel_nodejs_eventloop_lag_seconds /m);
  });

  test('a generation is counted under its route pattern with status 200, timed, and its image counted', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt, response_format: 'b64_json' });
    assert.equal(res.statusCode, 200, res.body);
    const text = await scrape(app);
    const labels = `route="${GENERATIONS_ROUTE}",method="POST",status_code="200"`;
    assert.equal(sample(text, 'easel_http_requests_total', labels), 1);
    assert.equal(sample(text, 'easel_http_request_duration_seconds_count', labels), 1);
    assert.equal(sample(text, 'easel_http_request_duration_seconds_bucket', `le="+Inf",${labels}`), 1);
    assert.equal(sample(text, 'easel_images_generated_total', 'deployment="dall-e-3",engine="placeholder"'), 1);
    assert.equal(sample(text, 'easel_job_duration_seconds_count', 'deployment="dall-e-3",outcome="succeeded"'), 1);
    assert.ok(sample(text, 'easel_queue_wait_seconds_count')! >= 1);
    assert.equal(sample(text, 'easel_queue_waiting_jobs'), 0);
    assert.equal(sample(text, 'easel_queue_active_jobs'), 0);
  });

  test('each deployment is up with its engine; placeholders have no model load time', async () => {
    const text = await scrape(app);
    for (const name of ['dall-e-2', 'dall-e-3', 'gpt-image-1']) {
      assert.equal(sample(text, 'easel_deployment_up', `deployment="${name}",engine="placeholder"`), 1);
    }
    assert.doesNotMatch(text, /^easel_model_load_seconds\{/m);
  });

  test('an unknown path is counted as "unmatched", with no series of its own', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/no/such/path-qzxv?x=1' });
    assert.equal(res.statusCode, 404);
    const text = await scrape(app);
    assert.equal(sample(text, 'easel_http_requests_total', 'route="unmatched",method="GET",status_code="404"'), 1);
    assert.doesNotMatch(text, /qzxv|no\/such/);
  });

  test('an operation poll is counted under its pattern, not its id', async () => {
    const url = '/openai/operations/images/3f1c2a9e-0000-4000-8000-000000000000?api-version=2023-06-01-preview';
    await app.server.inject({ method: 'GET', url, headers: { 'api-key': TEST_KEY } });
    const text = await scrape(app);
    assert.match(text, /route="\/openai\/operations\/images\/:id",method="GET"/);
    assert.doesNotMatch(text, /3f1c2a9e/);
  });

  test('no API key and no prompt text appear in the output', async () => {
    const text = await scrape(app);
    assert.ok(!text.includes(TEST_KEY));
    assert.ok(!text.includes('Zanzibar'));
    assert.ok(!text.includes('lighthouse'));
  });
});

describe('GET /metrics with an image filter that blocks everything', () => {
  const blockAll: ImageFilter = {
    name: 'test',
    check: async () => ({
      blocked: true,
      results: { ...categoriesAt('safe'), violence: { filtered: true, severity: 'high' } },
    }),
  };
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ imageFilter: blockAll });
  });
  after(() => app.dispose());

  test('filtered images are counted per deployment, as well as generated', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'two cats', n: 2 });
    assert.equal(res.statusCode, 400);
    const text = await scrape(app);
    assert.equal(sample(text, 'easel_images_filtered_total', 'deployment="gpt-image-1"'), 2);
    assert.equal(sample(text, 'easel_images_generated_total', 'deployment="gpt-image-1",engine="placeholder"'), 2);
    assert.equal(
      sample(text, 'easel_http_requests_total', `route="${GENERATIONS_ROUTE}",method="POST",status_code="400"`),
      1,
    );
  });
});

test('two apps in one process each have their own registry', async () => {
  const [a, b] = [await startTestApp(), await startTestApp()];
  try {
    await a.server.inject({ method: 'GET', url: '/healthz' });
    assert.equal(
      sample(await scrape(a), 'easel_http_requests_total', 'route="/healthz",method="GET",status_code="200"'),
      1,
    );
    assert.equal(
      sample(await scrape(b), 'easel_http_requests_total', 'route="/healthz",method="GET",status_code="200"'),
      undefined,
    );
  } finally {
    await a.dispose();
    await b.dispose();
  }
});
