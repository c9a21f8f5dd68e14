/**
 * Small helpers shared by the route tests in test/http/: URLs per route, an `inject()` wrapper that
 * sends the test key, exact assertions on the error envelope and Azure's headers, an SSE parser,
 * operation polling, and engines that wait or fail on demand.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { InjectOptions, LightMyRequestResponse } from 'fastify';

import { multipartBody, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { failingEngine, GatedEngine, UUID_RE } from '../helpers/engines.ts';

export type Response = LightMyRequestResponse;
export type Part = Parameters<typeof multipartBody>[0][number];

/** An api-version each route has in every Azure release that carries it. */
export const VERSIONS = {
  operations: '2023-06-01-preview',
  dalle3: '2024-10-21',
  gptImage: '2025-04-01-preview',
} as const;

/** The Azure generations path of a deployment, with the api-version it needs. */
export function generationsUrl(deployment: string, version: string | null = versionFor(deployment)): string {
  return withVersion(`/openai/deployments/${deployment}/images/generations`, version);
}

export function editsUrl(deployment: string, version: string | null = VERSIONS.gptImage): string {
  return withVersion(`/openai/deployments/${deployment}/images/edits`, version);
}

export function submitUrl(version: string | null = VERSIONS.operations): string {
  return withVersion('/openai/images/generations:submit', version);
}

export function operationUrl(id: string, version: string | null = VERSIONS.operations): string {
  return withVersion(`/openai/operations/images/${id}`, version);
}

function versionFor(deployment: string): string {
  return deployment === 'dall-e-3' ? VERSIONS.dalle3 : VERSIONS.gptImage;
}

function withVersion(path: string, version: string | null): string {
  return version === null ? path : `${path}?api-version=${encodeURIComponent(version)}`;
}

/** Request headers; a header set to undefined is not sent. */
export type Headers = Record<string, string | undefined>;

/**
 * The test key as `api-key`, unless the test sends its own `api-key` (any case) or
 * `authorization` header, or sets one of them to undefined to send no key at all.
 */
export function withKey(headers: Headers = {}): Record<string, string> {
  const names = Object.keys(headers).map((name) => name.toLowerCase());
  const own = names.includes('api-key') || names.includes('authorization');
  const merged: Headers = own ? { ...headers } : { 'api-key': TEST_KEY, ...headers };
  return Object.fromEntries(
    Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** POST a JSON body (a string is sent as is) with the test key. */
export function postJson(app: TestApp, url: string, payload: unknown, headers: Headers = {}): Promise<Response> {
  return app.server.inject({
    method: 'POST',
    url,
    headers: withKey({ 'content-type': 'application/json', ...headers }),
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
}

/** POST a multipart form with the test key. */
export function postForm(app: TestApp, url: string, parts: Part[], headers: Headers = {}): Promise<Response> {
  const body = multipartBody(parts);
  return app.server.inject({
    method: 'POST',
    url,
    headers: withKey({ ...body.headers, ...headers }),
    payload: body.payload,
  });
}

export function send(
  app: TestApp,
  options: Omit<InjectOptions, 'headers'> & { method: InjectOptions['method']; url: string; headers?: Headers },
): Promise<Response> {
  return app.server.inject({ ...options, headers: withKey(options.headers) });
}

/** A file part, as the SDKs send one. */
export function file(name: string, data: Buffer, contentType = 'image/png', filename = 'image.png'): Part {
  return { name, filename, contentType, data };
}

/** Azure's request-id headers: both present, equal, a UUID. */
export function assertRequestIds(res: Response): void {
  const id = res.headers['x-request-id'];
  assert.equal(typeof id, 'string');
  assert.match(id as string, UUID_RE);
  assert.equal(res.headers['apim-request-id'], id);
}

export function assertJsonType(res: Response): void {
  assert.match(String(res.headers['content-type']), /^application\/json(;|$)/);
}

/**
 * The exact error envelope: status, code, and param (checked when given, null included), with
 * the request-id and content-type headers every answer carries.
 */
export function assertError(res: Response, status: number, code: string, param?: string | null) {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body.slice(0, 300)}`);
  assertRequestIds(res);
  assertJsonType(res);
  const body = res.json() as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body), ['error']);
  for (const key of ['code', 'message', 'param', 'type']) assert.ok(key in body.error, `error.${key} is present`);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(body.error.code, code);
  if (param !== undefined) assert.equal(body.error.param, param);
  return body.error;
}

/** Server-sent events as `{ event, data }` with `data` JSON-parsed. */
export function parseSse(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice('event:'.length).trim();
        else if (line.startsWith('data:')) data.push(line.slice('data:'.length).trim());
      }
      return { event, data: JSON.parse(data.join('\n')) as Record<string, unknown> };
    });
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'deleted']);

/** GET an operation until it reaches a terminal status (or `until`); fails after 15 s. */
export async function pollOperation(
  app: TestApp,
  id: string,
  until: (status: string) => boolean = (s) => TERMINAL.has(s),
) {
  for (let attempt = 0; attempt < 1500; attempt++) {
    const res = await send(app, { method: 'GET', url: operationUrl(id) });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as Record<string, any>;
    if (until(body.status)) return { res, body };
    await sleep(10);
  }
  throw new Error(`operation ${id} never reached the awaited status`);
}

/** Submit a DALL-E 2 job and return its id. */
export async function submit(app: TestApp, body: unknown = { prompt: 'a red kite over hills' }): Promise<string> {
  const res = await postJson(app, submitUrl(), body);
  assert.equal(res.statusCode, 202, res.body);
  return (res.json() as { id: string }).id;
}

/** Nothing was written: no blob files and no image records. */
export async function assertNothingStored(app: TestApp): Promise<void> {
  const blobs = join(app.dataDir, 'blobs');
  assert.deepEqual(existsSync(blobs) ? listFiles(blobs) : [], []);
  const { images } = await app.services.store.listExpired(Number.MAX_SAFE_INTEGER);
  assert.deepEqual(images, []);
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name);
}

export async function assertHealthy(app: TestApp): Promise<void> {
  const res = await app.server.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
}

/** The path and query of an absolute URL the server handed out, for inject(). */
export function pathOf(url: string): string {
  const parsed = new URL(url);
  return parsed.pathname + parsed.search;
}

export function b64(data: Record<string, unknown>): Buffer {
  assert.equal(typeof data.b64_json, 'string');
  return Buffer.from(data.b64_json as string, 'base64');
}

export { failingEngine, GatedEngine, UUID_RE };
