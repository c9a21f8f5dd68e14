// What crosses between the admitting side and the job through the blob store (docs/scale-out.md,
// "The job contract"): edit uploads, partial images and b64_json results live under
// transient/<jobId>/, and each is deleted once read. A key that is gone is an internal error in
// Azure's envelope, never a crash.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { FsBlobStore } from '../../src/storage/index.ts';
import { halfMask, solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  assertHealthy,
  editsUrl,
  failingEngine,
  file,
  generationsUrl,
  parseSse,
  postForm,
  postJson,
} from './helpers.ts';

/** File blobs that remember every transient key written and which of them are still there. */
class RecordingBlobs extends FsBlobStore {
  readonly written: string[] = [];
  readonly live = new Set<string>();
  /** Transient keys matching this read as missing (swept, lost). */
  lose: RegExp | null = null;

  constructor() {
    super(mkdtempSync(join(tmpdir(), 'easel-transient-')));
  }

  override async put(key: string, bytes: Buffer): Promise<void> {
    await super.put(key, bytes);
    if (key.startsWith('transient/')) {
      this.written.push(key);
      this.live.add(key);
    }
  }

  override async get(key: string): Promise<Buffer | null> {
    if (this.lose?.test(key)) return null;
    return super.get(key);
  }

  override async delete(key: string): Promise<void> {
    await super.delete(key);
    this.live.delete(key);
  }

  /** The transient keys written since the last call. */
  take(): string[] {
    return this.written.splice(0);
  }
}

describe('transient keys', () => {
  let app: TestApp;
  const blobs = new RecordingBlobs();
  before(async () => {
    app = await startTestApp({ blobs });
  });
  after(() => app.dispose());

  test('a b64_json answer carries the images the job stored under its id, and the keys are gone after', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'two kites', n: 2, size: '1024x1024' });
    assert.equal(res.statusCode, 200, res.body.slice(0, 300));
    assert.equal(res.json().data.length, 2);
    const id = String(res.headers['x-request-id']);
    assert.deepEqual(blobs.take().sort(), [`transient/${id}/0.png`, `transient/${id}/1.png`]);
    assert.deepEqual([...blobs.live], []);
  });

  test("an edit's uploads go to the blob store until the job has read them, and are deleted after", async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'a boat' },
      file('image', await solidPng(16, 16)),
      file('mask', await halfMask(16, 16)),
    ]);
    assert.equal(res.statusCode, 200, res.body.slice(0, 300));
    const id = String(res.headers['x-request-id']);
    assert.deepEqual(blobs.take().sort(), [
      `transient/${id}/0.png`,
      `transient/${id}/mask`,
      `transient/${id}/upload-0`,
    ]);
    assert.deepEqual([...blobs.live], []);
  });

  test("a failed edit's uploads are deleted too", async () => {
    // A mask without a transparent pixel is refused only when the job decodes it.
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'a boat' },
      file('image', await solidPng(16, 16)),
      file('mask', await solidPng(16, 16, [0, 0, 0, 255])),
    ]);
    assertError(res, 400, 'invalid_image', 'mask');
    assert.equal(blobs.take().length, 2);
    assert.deepEqual([...blobs.live], []);
  });

  test('a stream sends the partial images the job stored, in order, and every key is gone after', async () => {
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a windmill',
      size: '1024x1024',
      stream: true,
      partial_images: 2,
    });
    assert.equal(res.statusCode, 200);
    const events = parseSse(res.body);
    assert.deepEqual(
      events.map((e) => [e.event, e.data.partial_image_index]),
      [
        ['image_generation.partial_image', 0],
        ['image_generation.partial_image', 1],
        ['image_generation.completed', undefined],
      ],
    );
    const id = String(res.headers['x-request-id']);
    assert.deepEqual(blobs.take(), [
      `transient/${id}/partial-0-0.png`,
      `transient/${id}/partial-0-1.png`,
      `transient/${id}/0.png`,
    ]);
    assert.deepEqual([...blobs.live], []);
  });
});

describe('a transient key that is gone', () => {
  let app: TestApp;
  const blobs = new RecordingBlobs();
  before(async () => {
    app = await startTestApp({ blobs });
  });
  after(() => app.dispose());

  test('a lost b64_json result answers 500 InternalServerError naming the request id', async () => {
    blobs.lose = /^transient\/[^/]+\/\d+\.png$/;
    const res = await postJson(app, generationsUrl('gpt-image-1'), { prompt: 'a kite' });
    const error = assertError(res, 500, 'InternalServerError');
    assert.ok(String(error.message).includes(String(res.headers['x-request-id'])));
    assert.deepEqual([...blobs.live], [], 'the keys are deleted all the same');
    await assertHealthy(app);
  });

  test('a lost partial image ends the stream with an error event, and the other keys are deleted', async () => {
    blobs.lose = /partial-0-0/;
    const res = await postJson(app, generationsUrl('gpt-image-1'), {
      prompt: 'a windmill',
      stream: true,
      partial_images: 2,
    });
    assert.equal(res.statusCode, 200);
    const events = parseSse(res.body);
    assert.deepEqual(
      events.map((e) => e.event),
      ['error'],
    );
    assert.equal((events[0]!.data.error as { code: string }).code, 'InternalServerError');
    assert.deepEqual([...blobs.live], []);
    await assertHealthy(app);
  });

  test('a lost upload fails its edit with 500 InternalServerError', async () => {
    blobs.lose = /upload-0$/;
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'a boat' },
      file('image', await solidPng(16, 16)),
    ]);
    assertError(res, 500, 'InternalServerError');
    assert.deepEqual([...blobs.live], []);
    await assertHealthy(app);
  });
});

describe('an engine that throws, with uploads in the blob store', () => {
  let app: TestApp;
  const blobs = new RecordingBlobs();
  before(async () => {
    app = await startTestApp({ blobs, engine: failingEngine });
  });
  after(() => app.dispose());

  test('the edit answers 500 and its uploads are deleted', async () => {
    const res = await postForm(app, editsUrl('gpt-image-1'), [
      { name: 'prompt', value: 'a boat' },
      file('image', await solidPng(16, 16)),
    ]);
    assertError(res, 500, 'InternalServerError');
    assert.equal(blobs.take().length, 1);
    assert.deepEqual([...blobs.live], []);
  });
});
