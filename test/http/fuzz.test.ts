// Several hundred generated malformed requests against a real listening server, from a fixed seed
// (the same requests on every run): wrong types and out-of-range values for every parameter of every
// model family's contract (driven by src/contract/families.ts), bad JSON, bad multipart, bad headers,
// bad paths and encodings, wrong methods, truncated bodies and raw-socket garbage. Every answer must
// be below 500, every error answer must be Azure's envelope, the server must still answer /healthz,
// and its resident memory must stay within a stated bound.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { FAMILIES, FAMILY_IDS, type ParamSpec, type ParamTable } from '../../src/contract/families.ts';
import { multipartBody, solidPng, TEST_KEY } from '../helpers/app.ts';
import { type LoggedApp, parseRaw, rawRequest, startLogged } from './raw.ts';

/** mulberry32: a small seeded generator, so every run sends the same requests. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    sample: <T>(items: readonly T[], n: number): T[] => [...items].sort(() => next() - 0.5).slice(0, n),
  };
}
const random = rng(0x5eed_11);

/** How much resident memory the whole run may add (generous: a leak of the size the issue saw is 1 GB+). */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;

interface Case {
  label: string;
  bytes: Buffer;
  /** Truncated or garbage input may be dropped without an answer. */
  mayDrop?: boolean;
  head?: boolean;
}

const DEPLOYMENT_OF = { 'dall-e-2': 'dall-e-2', 'dall-e-3': 'dall-e-3', 'gpt-image-1': 'gpt-image-1' } as const;
const VERSION = '2025-04-01-preview';

function request(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | string = '',
  extra = '',
): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const lines = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  const length = method === 'GET' && payload.length === 0 ? '' : `content-length: ${payload.length}\r\n`;
  return Buffer.concat([
    Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${lines}${length}${extra}connection: close\r\n\r\n`),
    payload,
  ]);
}

const jsonHeaders = { 'api-key': TEST_KEY, 'content-type': 'application/json' };

/** Values of the wrong type or out of range for one parameter. */
function badValues(spec: ParamSpec): unknown[] {
  const wrongTypes: unknown[] = [true, [], {}, [1, 2], { nested: { deep: 1 } }, '\u0000', '💥'.repeat(50), -1];
  switch (spec.kind) {
    case 'string':
      return [12345, false, ['a'], { a: 1 }, 'x'.repeat((spec.maxLength ?? 32000) + 1), ''];
    case 'enum':
      return [
        `${spec.values[0]}x`,
        spec.values[0]!.toUpperCase() === spec.values[0] ? 'NOPE' : spec.values[0]!.toUpperCase(),
        7,
        [spec.values[0]],
        ` ${spec.values[0]}`,
      ];
    case 'int':
      return [spec.min - 1, spec.max + 1, spec.min + 0.5, String(spec.min), 1e308, -1e308, 2 ** 53 + 1, '1e3', true];
    case 'number':
      return [spec.min - 1, spec.max + 1, 'abc', [0.5], ...(spec.exclusiveMin ? [spec.min] : []), '0.5'];
    case 'bool':
      return ['true', 1, 'yes', [true], 0];
  }
  return wrongTypes;
}

/** Multipart carries strings: values that no parameter of that kind accepts, as text. */
function badFormValues(spec: ParamSpec): string[] {
  switch (spec.kind) {
    case 'string':
      return ['x'.repeat((spec.maxLength ?? 32000) + 1), ''];
    case 'enum':
      return [`${spec.values[0]}x`, 'NOPE', '[]'];
    case 'int':
      return ['abc', String(spec.max + 1), String(spec.min - 1), '1.5', '1e3'];
    case 'number':
      return ['abc', String(spec.max + 1), String(spec.min - 1), '{}'];
    case 'bool':
      return ['maybe', 'yes', '2', '{}'];
  }
  return ['x'];
}

function contractCases(): Case[] {
  const cases: Case[] = [];
  for (const id of FAMILY_IDS) {
    const family = FAMILIES[id];
    const tables: Array<[string, ParamTable | null]> = [
      ['generation', family.generation],
      ['submit', family.submit],
    ];
    for (const [operation, table] of tables) {
      if (!table) continue;
      for (const [param, spec] of Object.entries(table)) {
        if (param === 'model') continue;
        for (const value of random.sample(badValues(spec), 6)) {
          const body = JSON.stringify({ prompt: 'a red kite over hills', [param]: value });
          const path =
            operation === 'submit'
              ? '/openai/images/generations:submit?api-version=2023-06-01-preview'
              : random.next() < 0.5
                ? `/openai/deployments/${DEPLOYMENT_OF[id]}/images/generations?api-version=${VERSION}`
                : '/openai/v1/images/generations';
          const payload = path.startsWith('/openai/v1')
            ? JSON.stringify({ model: DEPLOYMENT_OF[id], ...JSON.parse(body) })
            : body;
          cases.push({
            label: `${id} ${operation} ${param}=${JSON.stringify(value).slice(0, 40)}`,
            bytes: request('POST', path, jsonHeaders, payload),
          });
        }
      }
    }
  }
  return cases;
}

async function editCases(): Promise<Case[]> {
  const cases: Case[] = [];
  const png = await solidPng(64, 64);
  const path = `/openai/deployments/gpt-image-1/images/edits?api-version=${VERSION}`;
  const form = (parts: Parameters<typeof multipartBody>[0]) => {
    const body = multipartBody(parts);
    return request('POST', path, { 'api-key': TEST_KEY, ...body.headers }, body.payload);
  };
  const image = { name: 'image', filename: 'a.png', contentType: 'image/png', data: png };
  for (const [param, spec] of Object.entries(FAMILIES['gpt-image-1'].edit ?? {})) {
    if (param === 'model' || param === 'image' || param === 'mask') continue;
    for (const value of random.sample(badFormValues(spec), 2)) {
      cases.push({
        label: `edit ${param}=${value.slice(0, 30)}`,
        bytes: form([image, { name: 'prompt', value: 'add a ball' }, { name: param, value }]),
      });
    }
  }
  const garbage = Buffer.from(Array.from({ length: 600 }, () => random.int(256)));
  const odd: Array<[string, Parameters<typeof multipartBody>[0]]> = [
    ['no image', [{ name: 'prompt', value: 'x' }]],
    [
      'image is not an image',
      [
        { ...image, data: garbage },
        { name: 'prompt', value: 'x' },
      ],
    ],
    [
      'image as bad base64 text',
      [
        { name: 'image', value: '***not base64***' },
        { name: 'prompt', value: 'x' },
      ],
    ],
    [
      'image as a URL',
      [
        { name: 'image', value: 'http://example.com/a.png' },
        { name: 'prompt', value: 'x' },
      ],
    ],
    ['17 images', [...Array.from({ length: 17 }, () => image), { name: 'prompt', value: 'x' }]],
    ['mask is garbage', [image, { ...image, name: 'mask', data: garbage }, { name: 'prompt', value: 'x' }]],
    [
      'mask of another size',
      [image, { ...image, name: 'mask', data: png.subarray(0, 40) }, { name: 'prompt', value: 'x' }],
    ],
    ['prompt as a file', [image, { ...image, name: 'prompt' }]],
    ['unknown field', [image, { name: 'prompt', value: 'x' }, { name: 'frobnicate', value: '1' }]],
    ['__proto__ field', [image, { name: 'prompt', value: 'x' }, { name: '__proto__', value: '1' }]],
    ['prompt twice', [image, { name: 'prompt', value: 'x' }, { name: 'prompt', value: 'y' }]],
    ['60 fields', [image, ...Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, value: 'v' }))]],
  ];
  for (const [label, parts] of odd) cases.push({ label: `edit ${label}`, bytes: form(parts) });
  const header = (type: string, body: string) =>
    request('POST', path, { 'api-key': TEST_KEY, 'content-type': type }, body);
  cases.push(
    { label: 'multipart without boundary', bytes: header('multipart/form-data', '--x\r\n\r\n') },
    {
      label: 'multipart with a boundary never used',
      bytes: header('multipart/form-data; boundary=zzz', 'hello world'),
    },
    {
      label: 'multipart truncated mid-part',
      bytes: header(
        'multipart/form-data; boundary=b',
        '--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhal',
      ),
    },
    {
      label: 'multipart part without headers',
      bytes: header('multipart/form-data; boundary=b', '--b\r\n\r\nvalue\r\n--b--\r\n'),
    },
    {
      label: 'multipart bad part header',
      bytes: header('multipart/form-data; boundary=b', '--b\r\nContent-Disposition form-data\r\n\r\nv\r\n--b--\r\n'),
    },
    { label: 'JSON sent to edits', bytes: header('application/json', '{"prompt":"x"}') },
  );
  return cases;
}

function jsonCases(): Case[] {
  const path = `/openai/deployments/dall-e-3/images/generations?api-version=${VERSION}`;
  const bodies: Array<[string, string | Buffer]> = [
    ['truncated', '{"prompt": "a ki'],
    ['trailing comma', '{"prompt": "a",}'],
    ['single quotes', "{'prompt': 'a'}"],
    ['top-level array', '[{"prompt":"a"}]'],
    ['top-level string', '"a kite"'],
    ['top-level number', '42'],
    ['null', 'null'],
    ['empty', ''],
    ['whitespace', '   \n  '],
    ['deep nesting', `${'['.repeat(20000)}${']'.repeat(20000)}`],
    ['deep object', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`],
    ['__proto__', '{"prompt":"a","__proto__":{"polluted":1}}'],
    ['constructor.prototype', '{"prompt":"a","constructor":{"prototype":{"polluted":1}}}'],
    ['duplicate keys', '{"prompt":"a","prompt":{"x":1}}'],
    ['BOM', '\ufeff{"prompt":"a"}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
    ['lone surrogate', '{"prompt":"\\ud800"}'],
    ['NaN', '{"prompt":"a","n":NaN}'],
    ['huge number', `{"prompt":"a","n":1${'0'.repeat(400)}}`],
    ['over the body limit', `{"prompt":"${'a'.repeat(1024 * 1024 + 10)}"}`],
    ['binary garbage', Buffer.from(Array.from({ length: 300 }, () => random.int(256)))],
  ];
  const cases: Case[] = bodies.map(([label, body]) => ({
    label: `json ${label}`,
    bytes: request('POST', path, jsonHeaders, body),
  }));
  for (const type of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/xml',
    'application/json; charset=latin1',
    'application/jsonx',
    '',
    ';;;',
    'multipart/form-data; boundary=b',
    'image/png',
  ]) {
    cases.push({
      label: `content-type ${JSON.stringify(type)}`,
      bytes: request('POST', path, { 'api-key': TEST_KEY, 'content-type': type }, '{"prompt":"a"}'),
    });
  }
  return cases;
}

function headerCases(): Case[] {
  const path = `/openai/deployments/dall-e-3/images/generations?api-version=${VERSION}`;
  const body = '{"prompt":"a red kite"}';
  const variants: Array<[string, Record<string, string>]> = [
    ['no key', { 'content-type': 'application/json' }],
    ['empty key', { 'api-key': '', 'content-type': 'application/json' }],
    ['wrong key', { 'api-key': 'x'.repeat(5000), 'content-type': 'application/json' }],
    ['Bearer without key', { authorization: 'Bearer', 'content-type': 'application/json' }],
    ['Basic auth', { authorization: 'Basic dXNlcjpwYXNz', 'content-type': 'application/json' }],
    ['key in x-api-key', { 'x-api-key': TEST_KEY, 'content-type': 'application/json' }],
    ['latin1 key', { 'api-key': 'clé-ünïcödé', 'content-type': 'application/json' }],
    ['two api-versions', { ...jsonHeaders }],
    ['odd client request id', { ...jsonHeaders, 'x-ms-client-request-id': 'ü'.repeat(300) }],
    ['accept image', { ...jsonHeaders, accept: 'image/png' }],
    ['expect 100-continue', { ...jsonHeaders, expect: '100-continue' }],
    ['unknown expectation', { ...jsonHeaders, expect: 'teapot' }],
    ['content-encoding gzip', { ...jsonHeaders, 'content-encoding': 'gzip' }],
  ];
  const cases: Case[] = variants.map(([label, headers]) => ({
    label: `header ${label}`,
    bytes: request('POST', label === 'two api-versions' ? `${path}&api-version=2024-10-21` : path, headers, body),
  }));
  for (const version of [
    '',
    '2022-12-01',
    '2024-02-30',
    'latest',
    'v1',
    '9999-99-99',
    'x'.repeat(3000),
    '%E2%98%83',
    '2024-10-21%00',
  ]) {
    cases.push({
      label: `api-version ${version.slice(0, 20)}`,
      bytes: request(
        'POST',
        `/openai/deployments/dall-e-3/images/generations?api-version=${version}`,
        jsonHeaders,
        body,
      ),
    });
  }
  cases.push({ label: 'headers over the limit', bytes: request('GET', '/healthz', { 'x-big': 'a'.repeat(17000) }) });
  cases.push({
    label: 'many headers',
    bytes: request('GET', '/healthz', Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`x-h${i}`, 'v']))),
  });
  return cases;
}

function pathCases(): Case[] {
  const paths = [
    '/openai/deployments/%zz/images/generations',
    '/openai/%',
    '/openai/deployments/%00/images/generations',
    '/openai/deployments/a%2Fb/images/generations',
    '/openai/deployments/../../etc/passwd',
    '/files/images/..%2F..%2Feasel.db',
    '/files/images/%2e%2e',
    '/files/images/x.png?se=1&sig=zz',
    `/openai/operations/images/${'a'.repeat(8192)}`,
    `/openai/deployments/${'d'.repeat(500)}/images/generations`,
    '//openai//deployments//dall-e-3',
    '/openai/deployments/dall-e-3/images/generations/',
    '/OPENAI/DEPLOYMENTS/dall-e-3/images/generations',
    '/openai/operations/images/',
    '/openai/operations/images/%F0%9F%92%A5',
    '/playground/..%2F..%2Fpackage.json',
    '/playground/%00',
    '/openai/images/generations%3Asubmit',
    '/openai/v1/images/generations;jsessionid=1',
    '/\u00e9',
    '/openai/deployments/dall-e-3/images/generations#frag',
  ];
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'FOO'];
  const cases: Case[] = [];
  for (const path of paths) {
    for (const method of random.sample(methods, 3)) {
      const query = random.next() < 0.5 ? `?api-version=${VERSION}` : `?api-version=${VERSION}&api-key=${TEST_KEY}`;
      const full = path.includes('?') ? path : `${path}${query}`;
      cases.push({
        label: `${method} ${path.slice(0, 50)}`,
        bytes: request(method, full, jsonHeaders, method === 'GET' || method === 'HEAD' ? '' : '{}'),
        head: method === 'HEAD',
      });
    }
  }
  for (const [method, path] of [
    ['DELETE', '/openai/images/generations:submit'],
    ['GET', '/openai/deployments/dall-e-3/images/generations'],
    ['PUT', '/openai/operations/images/abc'],
    ['POST', '/healthz'],
    ['DELETE', '/'],
  ]) {
    cases.push({
      label: `wrong method ${method} ${path}`,
      bytes: request(method!, `${path}?api-version=${VERSION}`, jsonHeaders, '{}'),
    });
  }
  return cases;
}

function rawCases(): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < 60; i++) {
    const length = 1 + random.int(400);
    cases.push({
      label: `random bytes ${i}`,
      bytes: Buffer.from(Array.from({ length }, () => random.int(256))),
      mayDrop: true,
    });
  }
  const full = request(
    'POST',
    `/openai/deployments/dall-e-3/images/generations?api-version=${VERSION}`,
    jsonHeaders,
    '{"prompt":"a red kite over the hills"}',
  );
  for (let i = 0; i < 40; i++) {
    cases.push({ label: `truncated at ${i}`, bytes: full.subarray(0, 1 + random.int(full.length - 2)), mayDrop: true });
  }
  const lines = [
    'GET\r\n\r\n',
    'GET / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\nhost: x\n\n',
    ' / HTTP/1.1\r\nhost: x\r\n\r\n',
    'GET  /  HTTP/1.1\r\nhost: x\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nhost: x\r\nbad header line\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nhost: x\r\n: empty-name\r\n\r\n',
    'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n',
    'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\n',
    'POST /v1/images/generations HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999999999999\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nhost: x\r\n\tfolded: value\r\n\r\n',
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    '\r\n\r\n\r\n',
    `GET /${'a'.repeat(20000)} HTTP/1.1\r\nhost: x\r\n\r\n`,
  ];
  for (const line of lines)
    cases.push({
      label: `raw ${JSON.stringify(line.slice(0, 40))}`,
      bytes: Buffer.from(line, 'latin1'),
      mayDrop: true,
    });
  return cases;
}

function check(kase: Case, answer: string) {
  if (answer === '') {
    assert.ok(kase.mayDrop, `${kase.label}: no answer`);
    return;
  }
  const { status, headers, body } = parseRaw(answer);
  assert.ok(status >= 100 && status < 500, `${kase.label}: status ${status}: ${answer.slice(0, 300)}`);
  if (status < 400 || kase.head) return;
  assert.match(headers['content-type'] ?? '', /^application\/json/, `${kase.label}: ${answer.slice(0, 300)}`);
  let parsed: { error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    assert.fail(`${kase.label}: the body is not JSON: ${answer.slice(0, 400)}`);
  }
  assert.equal(typeof parsed.error?.code, 'string', `${kase.label}: ${body.slice(0, 200)}`);
  assert.equal(typeof parsed.error?.message, 'string', `${kase.label}: ${body.slice(0, 200)}`);
}

describe('fuzz: generated malformed requests against a real server', () => {
  let server: LoggedApp;
  let base: string;
  let cases: Case[];
  before(async () => {
    // The image classifier is not what is under test, and would only slow the odd valid request.
    server = await startLogged({ env: { EASEL_IMAGE_CLASSIFIER: 'none' } });
    base = server.base;
    cases = [
      ...contractCases(),
      ...(await editCases()),
      ...jsonCases(),
      ...headerCases(),
      ...pathCases(),
      ...rawCases(),
    ];
  });
  after(() => server.close());

  test('several hundred requests: none answers 5xx, every error is in the envelope, memory stays bounded, the server stays healthy', async (t) => {
    assert.ok(cases.length >= 400, `${cases.length} cases`);
    const rssBefore = process.memoryUsage().rss;
    const statuses = new Map<number, number>();
    // Four connections at a time: enough to overlap, few enough for a 2-core machine.
    for (let i = 0; i < cases.length; i += 4) {
      const batch = cases.slice(i, i + 4);
      // Complete requests say `connection: close`; truncated ones end the socket, as a client that gives up.
      const answers = await Promise.all(
        batch.map((kase) => rawRequest(base, kase.bytes, kase.mayDrop === true).catch(() => '')),
      );
      batch.forEach((kase, j) => {
        check(kase, answers[j]!);
        const status = answers[j] ? parseRaw(answers[j]!).status : 0;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      });
    }
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < RSS_BOUND_BYTES, `resident memory grew by ${Math.round(grown / 2 ** 20)} MiB`);
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.ok(![...statuses.keys()].some((s) => s >= 500), JSON.stringify([...statuses]));
    // Nor a 5xx that nobody saw (a client that left mid-body): no error lines in the server log.
    const errorLines = server.lines.filter((line) => Number(line.level) >= 50);
    assert.deepEqual(
      errorLines.map((line) => line.msg),
      [],
      JSON.stringify(errorLines[0])?.slice(0, 500),
    );
    t.diagnostic(
      `${cases.length} requests; answers by status (0: none): ${JSON.stringify(Object.fromEntries(statuses))}; RSS +${Math.round(grown / 2 ** 20)} MiB`,
    );
  });
});
