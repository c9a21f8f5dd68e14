// HttpModerationClassifier against a local node:http server: the exact requests of both wire
// protocols, severity mapping, chunking of long prompts for Azure, every kind of broken answer,
// and abort.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';

import {
  HttpModerationClassifier,
  type HttpModerationClassifierOptions,
} from '../../src/safety/classifiers/http-moderation.ts';

const KEY = 'sk-secret-KEY-0123456789';
const ID = 'mod-1';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}
let seen: Seen[] = [];
let respond: (req: Seen, res: ServerResponse, index: number) => void = () => {};
let server: Server;
let base = '';

before(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const request = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: JSON.parse(Buffer.concat(parts).toString()) as unknown,
      };
      seen.push(request);
      res.on('error', () => {}); // the client hangs up on purpose in some tests
      respond(request, res, seen.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  seen = [];
});

const json = (status: number, body: unknown) => (_req: Seen, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const azureAnswer = (severities: Record<string, number>) => ({
  blocklistsMatch: [],
  categoriesAnalysis: Object.entries(severities).map(([category, severity]) => ({ category, severity })),
});
const openaiAnswer = (scores: Record<string, unknown>) => ({
  id: 'modr-1',
  model: 'omni-moderation-latest',
  results: [{ flagged: false, categories: {}, category_scores: scores }],
});
const azure = (more: Partial<HttpModerationClassifierOptions> = {}) =>
  new HttpModerationClassifier({ id: ID, kind: 'azure-content-safety', url: base, key: KEY, ...more });
const openai = (more: Partial<HttpModerationClassifierOptions> = {}) =>
  new HttpModerationClassifier({ id: ID, kind: 'openai-moderation', url: `${base}/v1/moderations`, key: KEY, ...more });
const classify = (c: HttpModerationClassifier, text = 'a red fox') => c.classify(text, new AbortController().signal);
const safeAzure = azureAnswer({ Hate: 0, Sexual: 0, Violence: 0, SelfHarm: 0 });

describe('azure-content-safety', () => {
  test('POSTs text:analyze with the subscription key, JSON body and the four categories', async () => {
    respond = json(200, safeAzure);
    await classify(azure({ url: `${base}/` }), 'a red fox');
    assert.equal(seen.length, 1);
    const [req] = seen;
    assert.equal(req!.method, 'POST');
    assert.equal(req!.url, '/contentsafety/text:analyze?api-version=2024-09-01');
    assert.equal(req!.headers['ocp-apim-subscription-key'], KEY);
    assert.equal(req!.headers['content-type'], 'application/json');
    assert.equal(req!.headers['authorization'], undefined);
    assert.deepEqual(req!.body, {
      text: 'a red fox',
      categories: ['Hate', 'Sexual', 'Violence', 'SelfHarm'],
      outputType: 'FourSeverityLevels',
    });
  });

  test('four-level severities 0/2/4/6 read safe/low/medium/high', async () => {
    respond = json(200, azureAnswer({ Hate: 0, Sexual: 2, Violence: 4, SelfHarm: 6 }));
    assert.deepEqual(await classify(azure()), {
      severities: { hate: 'safe', sexual: 'low', violence: 'medium', self_harm: 'high' },
    });
  });

  test('eight-level severities 1/3/5/7 read safe/low/medium/high', async () => {
    respond = json(200, azureAnswer({ Hate: 1, Sexual: 3, Violence: 5, SelfHarm: 7 }));
    assert.deepEqual(await classify(azure()), {
      severities: { hate: 'safe', sexual: 'low', violence: 'medium', self_harm: 'high' },
    });
  });

  test('a url that already has /contentsafety/ is used as is', async () => {
    respond = json(200, safeAzure);
    await classify(azure({ url: `${base}/gateway/contentsafety/text:analyze?api-version=2023-10-01` }));
    assert.equal(seen[0]!.url, '/gateway/contentsafety/text:analyze?api-version=2023-10-01');
  });

  test('a 25 000-character prompt goes in 3 requests of ≤ 10 000 and keeps the highest severity per category', async () => {
    const prompt = 'word '.repeat(5000);
    const answers = [
      { Hate: 2, Sexual: 0, Violence: 0, SelfHarm: 0 },
      { Hate: 0, Sexual: 0, Violence: 6, SelfHarm: 0 },
      { Hate: 4, Sexual: 0, Violence: 2, SelfHarm: 0 },
    ];
    respond = (_req, res, i) => json(200, azureAnswer(answers[i]!))(_req, res);
    const scores = await classify(azure(), prompt);
    const texts = seen.map((r) => (r.body as { text: string }).text);
    assert.deepEqual(
      texts.map((t) => t.length),
      [10000, 10000, 5000],
    );
    assert.equal(texts.join(''), prompt);
    assert.ok(
      texts.slice(0, 2).every((t) => t.endsWith(' ')),
      'chunks end at whitespace',
    );
    assert.deepEqual(scores, { severities: { hate: 'medium', sexual: 'safe', violence: 'high', self_harm: 'safe' } });
  });
});

describe('openai-moderation', () => {
  test('POSTs input and model to the url with a bearer key', async () => {
    respond = json(200, openaiAnswer({ hate: 0 }));
    await classify(openai({ model: 'omni-moderation-latest' }), 'a red fox');
    const [req] = seen;
    assert.equal(req!.method, 'POST');
    assert.equal(req!.url, '/v1/moderations');
    assert.equal(req!.headers['authorization'], `Bearer ${KEY}`);
    assert.equal(req!.headers['content-type'], 'application/json');
    assert.deepEqual(req!.body, { input: 'a red fox', model: 'omni-moderation-latest' });
  });

  test('without key or model: no authorization header and no model field; extra headers are sent', async () => {
    respond = json(200, openaiAnswer({ hate: 0 }));
    await classify(openai({ key: undefined, headers: { 'x-tenant': 't1' } }));
    assert.equal(seen[0]!.headers['authorization'], undefined);
    assert.equal(seen[0]!.headers['x-tenant'], 't1');
    assert.deepEqual(seen[0]!.body, { input: 'a red fox' });
  });

  test('scores map to severities at the cut points; subcategories count for their parent; harassment and illicit are ignored', async () => {
    respond = json(
      200,
      openaiAnswer({
        hate: 0.1,
        'hate/threatening': 0.55,
        harassment: 0.99,
        'self-harm': 0.2,
        'self-harm/intent': 0.31,
        'self-harm/instructions': 0,
        sexual: 0.01,
        'sexual/minors': 0.0,
        violence: 0.85,
        'violence/graphic': 0.2,
        illicit: 0.99,
      }),
    );
    assert.deepEqual(await classify(openai()), {
      severities: { hate: 'medium', self_harm: 'low', sexual: 'safe', violence: 'high' },
    });
  });

  test('custom cut points move the boundaries', async () => {
    respond = json(200, openaiAnswer({ hate: 0.15, violence: 0.45 }));
    const scores = await classify(openai({ cutPoints: { low: 0.1, medium: 0.2, high: 0.4 } }));
    assert.deepEqual(scores, { severities: { hate: 'low', violence: 'high' } });
  });

  test('sexual/minors at or above the low cut point reads high; below it, safe', async () => {
    respond = json(200, openaiAnswer({ sexual: 0.05, 'sexual/minors': 0.3 }));
    assert.deepEqual(await classify(openai()), { severities: { sexual: 'high' } });
    respond = json(200, openaiAnswer({ sexual: 0.05, 'sexual/minors': 0.29 }));
    assert.deepEqual(await classify(openai()), { severities: { sexual: 'safe' } });
  });
});

describe('broken answers reject naming the classifier and never the key', () => {
  const megabytes2 = (_req: Seen, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no content-length to trust
    const piece = Buffer.alloc(64 * 1024, 0x20);
    for (let i = 0; i < 32; i++) res.write(piece);
    res.end();
  };
  const cases: [string, () => HttpModerationClassifier, (req: Seen, res: ServerResponse) => void, RegExp][] = [
    [
      '500 with an Azure error body',
      azure,
      json(500, { error: { code: 'InternalServerError', message: 'The service is unavailable.' } }),
      /HTTP 500: InternalServerError: The service is unavailable\./,
    ],
    [
      '400 InvalidRequestBody',
      azure,
      json(400, { error: { code: 'InvalidRequestBody', message: 'Text is empty.' } }),
      /HTTP 400: InvalidRequestBody: Text is empty\./,
    ],
    [
      '401 whose message echoes the key',
      openai,
      json(401, {
        error: {
          message: `Incorrect API key provided: ${KEY}.`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      }),
      /HTTP 401: invalid_api_key: Incorrect API key provided: \*\*\*\./,
    ],
    [
      '502 with an HTML body',
      openai,
      (_req, res) =>
        res
          .writeHead(502, { 'content-type': 'text/html' })
          .end(`<html><body>Bad gateway ${'x'.repeat(500)}</body></html>`),
      /HTTP 502: <html><body>Bad gateway x+…$/,
    ],
    [
      '200 with an HTML body',
      azure,
      (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'),
      /not JSON.*<html>hello<\/html>/,
    ],
    ['missing categoriesAnalysis', azure, json(200, { blocklistsMatch: [] }), /no categoriesAnalysis/],
    ['a requested category missing', azure, json(200, azureAnswer({ Hate: 0, Sexual: 0 })), /lacks Violence, SelfHarm/],
    [
      'Azure severity 9',
      azure,
      json(200, azureAnswer({ Hate: 9, Sexual: 0, Violence: 0, SelfHarm: 0 })),
      /unknown severity 9 for Hate/,
    ],
    ['missing results', openai, json(200, { id: 'x' }), /no results/],
    ['missing category_scores', openai, json(200, { results: [{ flagged: false }] }), /no category_scores/],
    [
      'score "0.5" as a string',
      openai,
      json(200, openaiAnswer({ hate: '0.5' })),
      /score for "hate" is "0\.5", not a number in \[0, 1\]/,
    ],
    ['score 1.5', openai, json(200, openaiAnswer({ violence: 1.5 })), /score for "violence" is 1\.5/],
    ['a 2 MiB body', openai, megabytes2, /larger than 1048576 bytes/],
    [
      'a redirect (the key is not sent elsewhere)',
      openai,
      (_req, res) => res.writeHead(307, { location: 'http://example.invalid/' }).end(),
      /request to .* failed/,
    ],
  ];
  for (const [name, make, handler, pattern] of cases) {
    test(name, async () => {
      respond = handler;
      const err = await classify(make()).then(
        () => assert.fail('expected a rejection'),
        (e: unknown) => e as Error,
      );
      assert.match(err.message, new RegExp(`^moderation classifier "${ID}"`));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes(KEY), err.message);
    });
  }

  test('connection refused on a closed port names ECONNREFUSED', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const c = new HttpModerationClassifier({
      id: ID,
      kind: 'openai-moderation',
      url: `http://127.0.0.1:${port}/v1/moderations`,
      key: KEY,
    });
    await assert.rejects(classify(c), (e: Error) => {
      assert.match(e.message, new RegExp(`^moderation classifier "${ID}".*ECONNREFUSED`));
      assert.ok(!e.message.includes(KEY));
      return true;
    });
  });
});

test('a server that never answers: aborting once it holds the request rejects with the signal reason', async () => {
  const controller = new AbortController();
  // Hold the request open and abort only once the server has it, so the abort meets a pending request.
  respond = () => controller.abort(new Error('classifier timeout'));
  await assert.rejects(azure().classify('a red fox', controller.signal), (e) => e === controller.signal.reason);
});

test('a body that stalls half-way: aborting rejects with the signal reason', async () => {
  respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).write('{"results":');
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('classifier timeout')), 50);
  await assert.rejects(openai().classify('a red fox', controller.signal), (e) => e === controller.signal.reason);
});

test('an already aborted signal rejects without a request', async () => {
  respond = json(200, safeAzure);
  const reason = new Error('shutting down');
  await assert.rejects(azure().classify('a red fox', AbortSignal.abort(reason)), (e) => e === reason);
  assert.equal(seen.length, 0);
});

describe('construction', () => {
  for (const [url, pattern] of [
    ['not a url', /url "not a url" is not a valid URL/],
    ['ftp://x.example/moderations', /must use http: or https:, not ftp:/],
  ] as const) {
    test(`rejects url ${url}`, () => {
      assert.throws(
        () => new HttpModerationClassifier({ id: ID, kind: 'openai-moderation', url, key: KEY }),
        (e: Error) => {
          assert.match(e.message, new RegExp(`^moderation classifier "${ID}"`));
          assert.match(e.message, pattern);
          return true;
        },
      );
    });
  }

  test('rejects cut points out of order', () => {
    assert.throws(
      () => openai({ cutPoints: { low: 0.6, medium: 0.5, high: 0.8 } }),
      /cutPoints .* low ≤ medium ≤ high/,
    );
  });
});
