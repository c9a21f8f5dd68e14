// An image folder that cannot be written (a read-only mount, a full disk): the failed request or
// operation answers with the catalogue's message and an id, never the server's paths or errno.
// Tests run as root, whom chmod does not stop, so the store itself raises the error fs would.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { BlobStore } from '../../src/storage/blob-store.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, assertHealthy, generationsUrl, pollOperation, postJson, submit } from './helpers.ts';

const SECRET_DIR = '/srv/private-volume/easel-data/blobs';

const readOnlyBlobs: BlobStore = {
  async put(key) {
    const path = `${SECRET_DIR}/${key}`;
    throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), {
      code: 'EACCES',
      errno: -13,
      syscall: 'open',
      path,
    });
  },
  get: async () => null,
  open: async () => null,
  delete: async () => {},
  list: async () => ({ entries: [], next: null }),
};

function assertNoInternals(body: string): void {
  // Request and operation ids are random UUIDs, which can themselves hold "-13": leave them out.
  const text = body.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<id>');
  for (const secret of [
    '/srv',
    'private-volume',
    'easel-data',
    'EACCES',
    'errno',
    '-13',
    'permission denied',
    '    at ',
  ]) {
    assert.ok(!text.includes(secret), `the answer leaks ${JSON.stringify(secret)}: ${text}`);
  }
}

describe('an image folder that cannot be written', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ blobs: readOnlyBlobs });
  });
  after(() => app.dispose());

  test('a sync request for a URL answers 500 with the catalogue message and its request id only', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), { prompt: 'a lighthouse at dusk' });
    const error = assertError(res, 500, 'InternalServerError');
    assertNoInternals(res.body);
    assert.ok(
      String(error.message).includes(String(res.headers['x-request-id'] ?? res.headers['apim-request-id'])),
      res.body,
    );
    await assertHealthy(app);
  });

  test('a DALL-E 2 operation ends failed with the catalogue message and the operation id only', async () => {
    const id = await submit(app);
    const { body, res } = await pollOperation(app, id);
    assert.equal(body.status, 'failed');
    assert.equal(body.error.code, 'internalFailure');
    assert.match(body.error.message, new RegExp(id));
    assertNoInternals(res.body);
  });

  // b64_json images cross from the job to the answer through the blob store too (docs/scale-out.md,
  // "The job contract"), so they fail the same way, without leaking more.
  test('a b64_json request answers 500 with the catalogue message and its request id only', async () => {
    const res = await postJson(app, generationsUrl('dall-e-3'), {
      prompt: 'a lighthouse at dusk',
      response_format: 'b64_json',
    });
    const error = assertError(res, 500, 'InternalServerError');
    assertNoInternals(res.body);
    assert.ok(String(error.message).includes(String(res.headers['x-request-id'])), res.body);
    await assertHealthy(app);
  });
});
