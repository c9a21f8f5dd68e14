// A client that stops sending mid-request is answered 408 (Azure's envelope) and disconnected once
// limits.requestTimeoutSeconds has passed; one that stops mid-headers, after
// limits.headersTimeoutSeconds. The clock stops once the request is in: a sync generation that runs
// longer than the timeout is not cut. Ordering, not durations: the slow client's 408 arrives while
// the generation is still held, and the generation then answers 200.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { loadConfig } from '../../src/config/index.ts';
import { GatedEngine } from '../e2e/helpers.ts';
import { TEST_KEY } from '../helpers/app.ts';
import { type LoggedApp, openSocket, parseRaw, startLogged } from './raw.ts';

/** Send `data`, then nothing more; resolve with all the server wrote once it closes the connection. */
function stall(base: string, data: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = openSocket(base);
    let out = '';
    socket.on('data', (chunk: string) => (out += chunk));
    socket.on('close', () => resolve(out));
    socket.on('error', () => undefined);
    socket.write(data);
  });
}

function assert408(answer: string) {
  const { status, headers, body } = parseRaw(answer);
  assert.equal(status, 408, answer);
  assert.equal(headers.connection, 'close');
  assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, '408');
}

describe('request and header timeouts', () => {
  let server: LoggedApp;
  let engine: GatedEngine;
  before(async () => {
    engine = new GatedEngine();
    server = await startLogged({
      engine,
      env: { EASEL_REQUEST_TIMEOUT_SECONDS: '1', EASEL_HEADERS_TIMEOUT_SECONDS: '1' },
    });
  });
  after(() => server.close());

  test('a stalled body gets a 408 while a long generation that arrived complete runs on and answers 200', async () => {
    const generation = fetch(`${server.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a kite' }),
    });
    await engine.started;
    const half = '{"prompt": "a ki';
    const answer = await stall(
      server.base,
      `POST /openai/deployments/dall-e-3/images/generations?api-version=2024-10-21 HTTP/1.1\r\nhost: x\r\napi-key: ${TEST_KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${half.length * 2}\r\n\r\n${half}`,
    );
    assert408(answer);
    engine.release();
    const res = await generation;
    assert.equal(res.status, 200, 'the generation outlived the request timeout');
    assert.equal(((await res.json()) as { data: unknown[] }).data.length, 1);
  });

  test('stalled headers get a 408, and the server logs why', async () => {
    assert408(await stall(server.base, 'GET /healthz HTTP/1.1\r\nhost: x\r\nx-partial: '));
    assert.ok(server.lines.some((l) => l.reason === 'ERR_HTTP_REQUEST_TIMEOUT'));
    assert.equal((await fetch(`${server.base}/healthz`)).status, 200);
  });
});

test('the timeouts are settings: defaults, a config file value, the environment, bad values named', () => {
  const defaults = loadConfig({});
  assert.equal(defaults.limits.requestTimeoutSeconds, 300);
  assert.equal(defaults.limits.headersTimeoutSeconds, 60);
  const fromFile = loadConfig({}, { limits: { requestTimeoutSeconds: 30 } });
  assert.equal(fromFile.limits.requestTimeoutSeconds, 30);
  const fromEnv = loadConfig({ EASEL_REQUEST_TIMEOUT_SECONDS: '45', EASEL_HEADERS_TIMEOUT_SECONDS: '10' });
  assert.deepEqual([fromEnv.limits.requestTimeoutSeconds, fromEnv.limits.headersTimeoutSeconds], [45, 10]);
  assert.throws(() => loadConfig({ EASEL_REQUEST_TIMEOUT_SECONDS: '0' }), /EASEL_REQUEST_TIMEOUT_SECONDS/);
  assert.throws(() => loadConfig({ EASEL_HEADERS_TIMEOUT_SECONDS: 'soon' }), /EASEL_HEADERS_TIMEOUT_SECONDS/);
});
