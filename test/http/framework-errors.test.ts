// What Fastify and Node answer before a route runs — broken percent-encoding, an over-long path
// segment, oversized headers, bytes the HTTP parser rejects, requests during shutdown — answers in
// Azure's envelope like every other error. A path with `//` still answers Azure's 404, and the log
// says why. Credentials in a query string never reach the log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { REDACTED, redactUrl } from '../../src/http/redact.ts';
import { GatedEngine, waitFor } from '../e2e/helpers.ts';
import { TEST_KEY } from '../helpers/app.ts';
import { type LoggedApp, openSocket, parseRaw, rawRequest, startLogged } from './raw.ts';

function assertEnvelope(answer: string, status: number, code: string) {
  const { status: got, headers, body } = parseRaw(answer);
  assert.equal(got, status, answer.slice(0, 400));
  assert.match(headers['content-type'] ?? '', /^application\/json/);
  assert.match(headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(headers['apim-request-id'], headers['x-request-id']);
  const parsed = JSON.parse(body) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(parsed), ['error']);
  assert.equal(parsed.error.code, code);
  assert.equal(typeof parsed.error.message, 'string');
  return { headers, error: parsed.error };
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nhost: x\r\n${extra}connection: close\r\n\r\n`;

describe('framework and parser errors', () => {
  let server: LoggedApp;
  before(async () => (server = await startLogged()));
  after(() => server.close());

  const cases: Array<[string, string, number, string]> = [
    [
      'malformed percent-encoding',
      get('/openai/deployments/%zz/images/generations?api-version=2024-10-21'),
      400,
      'BadRequest',
    ],
    [
      'a lone % in an operation id',
      get('/openai/operations/images/abc%?api-version=2023-06-01-preview'),
      400,
      'BadRequest',
    ],
    [
      'an 8 KB operation id',
      get(`/openai/operations/images/${'a'.repeat(8192)}?api-version=2023-06-01-preview`),
      414,
      '414',
    ],
    [
      'an 8 KB deployment name',
      `POST /openai/deployments/${'d'.repeat(8192)}/images/generations?api-version=2024-10-21 HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`,
      414,
      '414',
    ],
    ['headers over 16 KB', get('/healthz', `x-big: ${'a'.repeat(20_000)}\r\n`), 431, '431'],
    ['a control character in a header name', get('/healthz', 'x-b\u0001d: 1\r\n'), 400, 'BadRequest'],
    ['a control character in a header value', get('/healthz', 'x-bad: a\u0000b\r\n'), 400, 'BadRequest'],
    ['a garbage request line', 'GARBAGE\r\n\r\n', 400, 'BadRequest'],
    ['an unknown HTTP version', 'GET /healthz HTTP/7.3\r\nhost: x\r\n\r\n', 400, 'BadRequest'],
    [
      'a bad content-length',
      'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n',
      400,
      'BadRequest',
    ],
    [
      'two different content-lengths',
      'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}',
      400,
      'BadRequest',
    ],
    [
      'a malformed chunk size',
      'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      400,
      'BadRequest',
    ],
  ];
  for (const [label, request, status, code] of cases) {
    test(`${label} answers ${status} in Azure's envelope`, async () => {
      const { headers } = assertEnvelope(await rawRequest(server.base, request), status, code);
      assert.ok(headers['x-easel-error-reason'], 'the reason header names the cause');
    });
  }

  test('OPTIONS without Origin is a plain OPTIONS: 204 with the allowed methods, not text/plain', async () => {
    const { status, headers, body } = parseRaw(
      await rawRequest(
        server.base,
        `OPTIONS /openai/v1/images/generations HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
      ),
    );
    assert.equal(status, 204);
    assert.match(headers['access-control-allow-methods'] ?? '', /POST/);
    assert.equal(body, '');
  });

  test('a client that leaves mid-body is a rejected request in the log, not a server error', async () => {
    const half = '{"prompt": "a ki';
    await rawRequest(
      server.base,
      `POST /openai/deployments/dall-e-3/images/generations?api-version=2024-10-21 HTTP/1.1\r\nhost: x\r\napi-key: ${TEST_KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${half.length * 2}\r\n\r\n${half}`,
      true,
    );
    await waitFor(
      'the aborted request to be logged',
      () => (server.lines.some((l) => l.msg === 'rejected' && l.code === 'BadRequest') ? true : undefined),
      5000,
      5,
    );
    assert.deepEqual(
      server.lines.filter((l) => Number(l.level) >= 50),
      [],
    );
  });

  test('the server answers normally after every one of them', async () => {
    const res = await fetch(`${server.base}/healthz`);
    assert.equal(res.status, 200);
  });

  test("a path with // answers Azure's 404, and the log says the endpoint ends in a slash", async () => {
    const res = await fetch(`${server.base}//openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`, {
      method: 'POST',
      headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse' }),
    });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), {
      error: { code: '404', message: 'Resource not found', param: null, type: null },
    });
    const line = server.lines.find((l) => l.reqId === res.headers.get('x-request-id') && l.reason);
    assert.equal(line?.level, 30, 'logged at info');
    assert.match(String(line?.reason), /empty segment \(\/\/\).*ends in a slash/);
  });
});

describe('shutdown', () => {
  test('a request that arrives on an open connection while the server drains gets a 503 in the envelope', async () => {
    const engine = new GatedEngine();
    const server = await startLogged({ engine });
    const socket = openSocket(server.base);
    let answers = '';
    socket.on('data', (chunk: string) => (answers += chunk));
    const ended = new Promise((resolve) => socket.on('close', resolve));
    const body = JSON.stringify({ prompt: 'a kite' });
    socket.write(
      `POST /openai/deployments/dall-e-3/images/generations?api-version=2024-10-21 HTTP/1.1\r\nhost: x\r\napi-key: ${TEST_KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    await engine.started;
    const closed = server.close();
    await waitFor(
      'the server to stop listening',
      () => (server.app.server.server.listening ? undefined : true),
      5000,
      5,
    );
    socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    await waitFor(
      'the second request to reach the server',
      () => (server.lines.some((l) => (l.req as { url?: string } | undefined)?.url === '/healthz') ? true : undefined),
      5000,
      5,
    );
    engine.release();
    await ended;
    await closed;
    const second = answers.slice(answers.indexOf('HTTP/1.1', 1));
    assert.match(answers, /^HTTP\/1\.1 200 /, 'the running generation finished');
    assertEnvelope(second, 503, 'ServiceUnavailable');
  });
});

describe('credentials in query strings', () => {
  const SECRETS = [
    'k3y-in-query-0001',
    'sub-key-0002',
    'tok-0003',
    'sig-0004',
    'code-0005',
    'pw-0006',
    'secret-0007',
    'enc-0008',
  ];
  const QUERY =
    `api-key=${SECRETS[0]}&Subscription-Key=${SECRETS[1]}&access_token=${SECRETS[2]}&SIG=${SECRETS[3]}` +
    `&code=${SECRETS[4]}&password=${SECRETS[5]}&client_secret=${SECRETS[6]}&api%2Dkey=${SECRETS[7]}&size=1024x1024`;

  test('redactUrl replaces every credential-like value and keeps the rest as sent', () => {
    const redacted = redactUrl(`/openai/x?${QUERY}`);
    for (const secret of SECRETS) assert.ok(!redacted.includes(secret), secret);
    assert.ok(redacted.includes('size=1024x1024'));
    assert.ok(redacted.includes(`Subscription-Key=${REDACTED}`));
    assert.equal(redactUrl('/healthz'), '/healthz');
    assert.equal(redactUrl('/a?key'), '/a?key');
    assert.equal(redactUrl('/a?%zz=1&token=x'), `/a?%zz=1&token=${REDACTED}`);
  });

  test('no log line holds them: routed, 404, 401, bad-URL and parser-error requests', async () => {
    const server = await startLogged();
    try {
      await fetch(`${server.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21&${QUERY}`, {
        method: 'POST',
        headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'a kite' }),
      });
      await fetch(`${server.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21&${QUERY}`, {
        method: 'POST',
      });
      await fetch(`${server.base}/no/such/route?${QUERY}`);
      await rawRequest(server.base, get(`/openai/%zz?${QUERY}`));
      await rawRequest(server.base, get(`/healthz?${QUERY}`, 'x-b\u0001d: 1\r\n'));
      const text = JSON.stringify(server.lines);
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} is not logged`);
      assert.ok(text.includes(REDACTED));
      assert.ok(server.lines.filter((l) => l.req).length >= 3, 'the requests were logged');
    } finally {
      await server.close();
    }
  });
});
