// Azure's 401 body is the same whatever went wrong with the key; easel keeps it byte for byte and
// says which cause it was in the log line of the request and in x-easel-error-reason. An unknown
// deployment names the ones that exist, an unsupported api-version lists the supported ones, in
// Azure's envelope.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TEST_KEY } from '../helpers/app.ts';
import { type LoggedApp, startLogged } from './raw.ts';

const AZURE_401 = {
  error: {
    code: '401',
    message:
      'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
    param: null,
    type: null,
  },
};
const URL_3 = '/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21';
const WRONG_KEY = 'not-the-key-5f3a9c1e7b';

describe('why a request was refused', () => {
  let server: LoggedApp;
  before(async () => (server = await startLogged()));
  after(() => server.close());

  async function post(url: string, headers: Record<string, string>, body: unknown = { prompt: 'a kite' }) {
    const res = await fetch(`${server.base}${url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return {
      res,
      body: (await res.json()) as { error: Record<string, unknown> },
      reason: res.headers.get('x-easel-error-reason') ?? '',
    };
  }

  function loggedReason(requestId: string | null): string {
    const line = server.lines.find((l) => l.reqId === requestId && typeof l.reason === 'string');
    assert.ok(line, `a log line with the reason for ${requestId}`);
    return line.reason as string;
  }

  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ['no key at all', URL_3, {}, /no key was sent/],
    ['an empty api-key header', URL_3, { 'api-key': '' }, /api-key header is empty/],
    ['the key in x-api-key', URL_3, { 'x-api-key': TEST_KEY }, /'x-api-key' header/],
    ['Authorization without Bearer', URL_3, { authorization: TEST_KEY }, /not of the form 'Bearer <key>'/],
    ['the key in the query string', `${URL_3}&api-key=${TEST_KEY}`, {}, /'api-key' query parameter/],
    ['a wrong key', URL_3, { 'api-key': WRONG_KEY }, /not one of this server's keys/],
  ];
  for (const [label, url, headers, why] of cases) {
    test(`401 for ${label}: Azure's exact body, the reason in the header and the log`, async () => {
      const { res, body, reason } = await post(url, headers);
      assert.equal(res.status, 401);
      assert.deepEqual(body, AZURE_401);
      assert.match(reason, why);
      assert.match(
        res.headers.get('access-control-expose-headers') ?? '',
        /x-easel-error-reason/,
        'browser apps may read it',
      );
      assert.equal(loggedReason(res.headers.get('x-request-id')), reason);
      for (const secret of [TEST_KEY, WRONG_KEY]) {
        assert.ok(!reason.includes(secret), 'the reason never quotes a key');
        assert.ok(!JSON.stringify(server.lines).includes(secret), 'no key in the log');
      }
    });
  }

  test("an unknown deployment names the ones this server has, in Azure's envelope", async () => {
    const { res, body, reason } = await post('/openai/deployments/dalle3/images/generations?api-version=2024-10-21', {
      'api-key': TEST_KEY,
    });
    assert.equal(res.status, 404);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, 'DeploymentNotFound');
    assert.match(String(body.error.message), /^The API deployment for this resource does not exist\./);
    for (const name of ['dall-e-2', 'dall-e-3', 'gpt-image-1']) assert.ok(String(body.error.message).includes(name));
    assert.match(reason, /no deployment named "dalle3"/);
    assert.equal(loggedReason(res.headers.get('x-request-id')), reason);
  });

  test('an unknown `model` on the v1 surface names the deployments too', async () => {
    const { res, body } = await post(
      '/openai/v1/images/generations',
      { authorization: `Bearer ${TEST_KEY}` },
      { model: 'dall-e-4', prompt: 'x' },
    );
    assert.equal(res.status, 404);
    assert.equal(body.error.code, 'DeploymentNotFound');
    assert.match(String(body.error.message), /dall-e-3/);
  });

  test('an api-version easel does not know lists the supported ones; a missing one says so', async () => {
    const old = await post('/openai/deployments/dall-e-3/images/generations?api-version=2022-12-01', {
      'api-key': TEST_KEY,
    });
    assert.equal(old.res.status, 400);
    assert.deepEqual(Object.keys(old.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(old.body.error.code, 'BadRequest');
    assert.equal(old.body.error.param, 'api-version');
    assert.match(String(old.body.error.message), /^API version not supported\. .*2024-10-21/);
    assert.match(old.reason, /"2022-12-01" is not supported/);

    const missing = await post('/openai/deployments/dall-e-3/images/generations', { 'api-key': TEST_KEY });
    assert.equal(missing.res.status, 404);
    assert.equal(missing.body.error.code, '404');
    assert.match(missing.reason, /api-version query parameter is missing/);

    const gone = await post('/openai/images/generations:submit?api-version=2024-10-21', { 'api-key': TEST_KEY });
    assert.equal(gone.res.status, 404);
    assert.match(gone.reason, /has no operations route; it exists in 2023-06-01-preview to/);
  });

  test('a reason that quotes client text is a valid header value (non-ASCII replaced)', async () => {
    const { res, reason } = await post(
      '/openai/v1/images/generations',
      { authorization: `Bearer ${TEST_KEY}` },
      { model: 'модель\r\nx', prompt: 'x' },
    );
    assert.equal(res.status, 404);
    assert.match(reason, /^[\x20-\x7e]+$/);
  });
});
