// Structured logs: JSON lines, the request id on every line about a request, and nothing secret
// (keys, link signatures, prompts) unless the operator turns prompt logging on.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';

import { pino } from 'pino';

import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { TEST_KEY } from '../helpers/app.ts';

const PROMPT = 'a very private prompt about my cat';

async function logsOf(
  env: Record<string, string>,
  requests: (app: Awaited<ReturnType<typeof createApp>>) => Promise<void>,
) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'easel-logs-'));
  const app = await createApp(loadConfig({ EASEL_DATA_DIR: dataDir, EASEL_API_KEYS: TEST_KEY, ...env }), {
    logger: pino({ level: 'info' }, stream),
  });
  try {
    await requests(app);
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return lines;
}

const generate = (app: Awaited<ReturnType<typeof createApp>>) =>
  app.server.inject({
    method: 'POST',
    url: '/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01',
    headers: { 'api-key': TEST_KEY },
    payload: { prompt: PROMPT },
  });

test('request lines carry the request id; no key, prompt or link signature is logged by default', async () => {
  const lines = await logsOf({}, async (app) => {
    const response = await generate(app);
    assert.equal(response.statusCode, 200);
    const url = new URL((response.json() as { data: { url: string }[] }).data[0]!.url);
    await app.server.inject({ method: 'GET', url: `${url.pathname}${url.search}` });
    await app.server.inject({ method: 'GET', url: '/healthz', headers: { 'api-key': TEST_KEY } });
  });
  const text = JSON.stringify(lines);
  assert.ok(!text.includes(TEST_KEY), 'no key');
  assert.ok(!text.includes(PROMPT), 'no prompt');
  assert.doesNotMatch(text, /sig=(?!\[redacted\])/, 'link signatures are redacted');
  const requestLines = lines.filter((l) => l.req || l.res);
  assert.ok(requestLines.length >= 6);
  for (const line of requestLines) assert.match(String(line.reqId), /^[0-9a-f-]{36}$/);
});

test('EASEL_LOG_PROMPTS=true logs each prompt with its request id; DALL-E 2 submits log the operation id', async () => {
  const lines = await logsOf({ EASEL_LOG_PROMPTS: 'true' }, async (app) => {
    await generate(app);
    await app.server.inject({
      method: 'POST',
      url: '/openai/images/generations:submit?api-version=2023-06-01-preview',
      headers: { 'api-key': TEST_KEY },
      payload: { prompt: 'a fox' },
    });
  });
  const prompts = lines.filter((l) => l.msg === 'prompt');
  assert.deepEqual(
    prompts.map((l) => [l.deployment, l.prompt]),
    [
      ['dall-e-3', PROMPT],
      ['dall-e-2', 'a fox'],
    ],
  );
  for (const line of prompts) assert.ok(line.reqId);
  const submitted = lines.find((l) => l.msg === 'operation submitted')!;
  assert.ok(submitted.reqId && submitted.operationId);
  assert.ok(
    lines.some((l) => l.operationId === submitted.operationId && l.msg === 'operation state'),
    'the operation lines share the id',
  );
  assert.throws(() => loadConfig({ EASEL_LOG_PROMPTS: 'sometimes' }), /EASEL_LOG_PROMPTS/);
});
