// The runner on the consuming side of the job contract: partial images filtered, encoded and stored
// off the engine's progress and reported in order; delivered images stored by key.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';

import type { ContentFilterResults } from '../../src/contract/annotations.ts';
import type { RawImage } from '../../src/contract/request.ts';
import type { Engine, EngineRunContext } from '../../src/engines/engine.ts';
import type { JobContext, JobProgress } from '../../src/jobs/job-contract.ts';
import { createRunner } from '../../src/jobs/runner.ts';
import { SqliteOperationStore } from '../../src/jobs/sqlite-operation-store.ts';
import type { ImageFilter } from '../../src/safety/image-filter.ts';
import type { BlobStore } from '../../src/storage/index.ts';
import { generationRequest } from '../helpers/requests.ts';

const SIZE = 8;
const STEPS = 4;

/** A solid image whose red channel tells which step drew it. */
function image(step: number): RawImage {
  const data = Buffer.alloc(SIZE * SIZE * 4, 255);
  for (let i = 0; i < data.length; i += 4) data[i] = step;
  return { width: SIZE, height: SIZE, channels: 4, data };
}

/** Reports STEPS steps, each with a preview, as fast as it can, then the image; `done` once it returned. */
class SteppingEngine implements Engine {
  readonly name = 'stepping';
  done = false;
  async run(_request: unknown, context: EngineRunContext = {}) {
    for (let step = 1; step <= STEPS; step++) {
      context.onProgress?.({ step, totalSteps: STEPS, previews: [image(step)] });
      await new Promise((resolve) => setImmediate(resolve)); // the next step's work
    }
    this.done = true;
    return { images: [image(STEPS)] };
  }
}

class MemoryBlobs implements BlobStore {
  readonly map = new Map<string, Buffer>();
  async put(key: string, bytes: Buffer) {
    this.map.set(key, bytes);
  }
  async get(key: string) {
    return this.map.get(key) ?? null;
  }
  async delete(key: string) {
    this.map.delete(key);
  }
  async open(key: string) {
    const bytes = this.map.get(key);
    return bytes ? { stream: Readable.from([bytes]), size: bytes.length } : null;
  }
  async list(prefix: string) {
    const keys = [...this.map.keys()].filter((key) => key.startsWith(prefix)).sort();
    return { entries: keys.map((key) => ({ key, modified: 0 })), next: null };
  }
}

const clean = {} as ContentFilterResults;

function setup(imageFilter: ImageFilter) {
  const engine = new SteppingEngine();
  const blobs = new MemoryBlobs();
  const store = new SqliteOperationStore(':memory:');
  const run = createRunner({ engineFor: () => engine, imageFilter, store, blobs, imageUrlTtlSeconds: 60 });
  const progress: JobProgress[] = [];
  const context: JobContext = {
    id: 'job-1',
    attempt: 1,
    reportProgress: (p) => progress.push(p),
    signal: new AbortController().signal,
  };
  return { engine, blobs, store, run, progress, context };
}

test('a blocked preview is not stored and takes no index; the next one due becomes partial image 0', async () => {
  // partial_images 2 over 4 steps: due at steps 2 and 3. The preview of step 2 is blocked.
  const filter: ImageFilter = {
    name: 'test',
    check: async (checked) => ({ blocked: checked.data[0] === 2, results: clean }),
  };
  const { blobs, store, run, progress, context } = setup(filter);
  const request = generationRequest({
    deployment: 'gpt-image-1',
    family: 'gpt-image-1',
    stream: true,
    partialImages: 2,
    responseFormat: 'b64_json',
  });
  const result = await run({ request, operationId: null }, context);
  assert.deepEqual(progress, [
    { step: 1, totalSteps: STEPS },
    { step: 2, totalSteps: STEPS },
    {
      step: 3,
      totalSteps: STEPS,
      partialImages: [{ image: 0, partialImageIndex: 0, key: 'transient/job-1/partial-0-0.png' }],
    },
    { step: 4, totalSteps: STEPS },
  ]);
  assert.deepEqual(result.items, [
    {
      filtered: false,
      contentType: 'image/png',
      contentFilterResults: clean,
      key: 'transient/job-1/0.png',
      stored: null,
    },
  ]);
  assert.deepEqual([...blobs.map.keys()].sort(), ['transient/job-1/0.png', 'transient/job-1/partial-0-0.png']);
  await store.close();
});

test('a request that does not stream reports no progress: nobody would read it', async () => {
  const { run, progress, context, store } = setup({
    name: 'test',
    check: async () => ({ blocked: false, results: clean }),
  });
  const request = generationRequest({ deployment: 'gpt-image-1', family: 'gpt-image-1', responseFormat: 'b64_json' });
  const result = await run({ request, operationId: null }, context);
  assert.equal(result.items.length, 1);
  assert.deepEqual(progress, []);
  await store.close();
});

test("encoding previews never holds up the engine, and the job's result waits for them", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let checks = 0;
  const filter: ImageFilter = {
    name: 'slow',
    check: async () => {
      // The first preview's verdict takes until the test releases it.
      if (checks++ === 0) await held;
      return { blocked: false, results: clean };
    },
  };
  const { engine, store, run, progress, context } = setup(filter);
  const request = generationRequest({
    deployment: 'gpt-image-1',
    family: 'gpt-image-1',
    stream: true,
    partialImages: 1,
    responseFormat: 'b64_json',
  });
  let settled = false;
  const running = run({ request, operationId: null }, context).finally(() => (settled = true));
  // The preview of step 2 waits for its verdict; the engine goes on to its last step all the same.
  for (let i = 0; i < 100 && !engine.done; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(engine.done, true, 'the engine finished while the preview was still held');
  assert.equal(settled, false, 'the result waits for the partial image');
  assert.equal(progress.length, 1, 'the report of step 1 went out; the rest wait behind the preview, in order');
  release();
  await running;
  assert.deepEqual(
    progress.map((p) => [p.step, p.partialImages?.length ?? 0]),
    [
      [1, 0],
      [2, 1],
      [3, 0],
      [4, 0],
    ],
  );
  await store.close();
});

test('a URL image is stored with its record; its key is the image key, not a transient one', async () => {
  const filter: ImageFilter = { name: 'none', check: async () => ({ blocked: false, results: clean }) };
  const { blobs, store, run, context } = setup(filter);
  const result = await run({ request: generationRequest({ responseFormat: 'url' }), operationId: null }, context);
  const [item] = result.items;
  assert.ok(item && !item.filtered && item.stored);
  assert.match(item.key, /^images\/[0-9a-f-]+\.png$/);
  assert.ok(blobs.map.has(item.key));
  assert.equal((await store.getImage(item.stored.id))?.key, item.key);
  await store.close();
});

test('a URL image whose record cannot be written fails the job and leaves no bytes behind', async () => {
  const { blobs, store, run, context } = setup({
    name: 'test',
    check: async () => ({ blocked: false, results: clean }),
  });
  store.putImage = async () => {
    throw new Error('the database is away');
  };
  const request = generationRequest({ deployment: 'dall-e-3', family: 'dall-e-3', responseFormat: 'url' });
  await assert.rejects(run({ request, operationId: null }, context), /the database is away/);
  assert.deepEqual([...blobs.map.keys()], []);
  await store.close();
});

test('a URL image whose bytes cannot be written fails the job and leaves no record behind', async () => {
  const { blobs, store, run, context } = setup({
    name: 'test',
    check: async () => ({ blocked: false, results: clean }),
  });
  const written: string[] = [];
  const putImage = store.putImage.bind(store);
  store.putImage = async (record) => {
    written.push(record.id);
    await putImage(record);
  };
  blobs.put = async () => {
    throw new Error('the bucket is away');
  };
  const request = generationRequest({ deployment: 'dall-e-3', family: 'dall-e-3', responseFormat: 'url' });
  await assert.rejects(run({ request, operationId: null }, context), /the bucket is away/);
  assert.equal(written.length, 1);
  assert.equal(await store.getImage(written[0]!), null);
  await store.close();
});

test('a URL image that cannot be encoded fails the job and leaves neither bytes nor record behind', async () => {
  const { engine, blobs, store, run, context } = setup({
    name: 'test',
    check: async () => ({ blocked: false, results: clean }),
  });
  // Pixels too few for the size: the encoder refuses them, while the record is being written.
  engine.run = async () => ({ images: [{ width: SIZE, height: SIZE, channels: 4, data: Buffer.alloc(10) }] });
  const written: string[] = [];
  const putImage = store.putImage.bind(store);
  store.putImage = async (record) => {
    written.push(record.id);
    await putImage(record);
  };
  const request = generationRequest({ deployment: 'dall-e-3', family: 'dall-e-3', responseFormat: 'url' });
  await assert.rejects(run({ request, operationId: null }, context));
  assert.equal(written.length, 1);
  assert.equal(await store.getImage(written[0]!), null);
  assert.deepEqual([...blobs.map.keys()], []);
  await store.close();
});
