// The diffusion engine with its real worker thread on a tiny model: loading, progress across
// batches, cancellation, and a worker that dies mid-job.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { DiffusionEngine } from '../../../src/engines/diffusion/engine.ts';
import { ModelLoadError, ModelWorker } from '../../../src/engines/diffusion/worker/host.ts';
import { EngineAbortedError, type EngineProgress } from '../../../src/engines/engine.ts';
import { writeTinyModel } from '../../../tools/model-builder/tiny-sd.ts';
import { generationRequest } from '../../helpers/requests.ts';

/** Reaches the worker's thread, to end it as a native crash would. */
class TestModelWorker extends ModelWorker {
  get thread(): unknown {
    return this.rpc;
  }

  async endThread(): Promise<void> {
    await this.rpc!.terminate();
  }
}

let root: string;
let worker: TestModelWorker;
let engine: DiffusionEngine;
const settings = { folder: '', steps: 2, resolution: 64 };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'easel-engine-'));
  settings.folder = join(root, 'tiny');
  await writeTinyModel(settings.folder);
  worker = new TestModelWorker({ folder: settings.folder, executionProviders: ['cpu'], threads: 1 });
  engine = new DiffusionEngine(worker, settings, 'tiny');
});
after(async () => {
  await engine.close();
  await rm(root, { recursive: true, force: true });
});

test('load reports the model; a missing folder is a load error naming it', async () => {
  const info = await engine.load();
  assert.equal(info.family, 'sd1');
  assert.equal(info.nativeResolution, 512);
  const missing = new ModelWorker({ folder: join(root, 'nope'), executionProviders: ['cpu'], threads: 1 });
  await assert.rejects(
    missing.load(),
    (error: unknown) => error instanceof ModelLoadError && /nope: the folder does not exist/.test(error.message),
  );
  await assert.rejects(missing.load(), ModelLoadError, 'a failed load stays failed');
  await missing.close();
});

test('n = 6 runs as two batches; progress counts every step, and the steps of the partial images carry a preview per image', async () => {
  const seen: EngineProgress[] = [];
  const output = await engine.run(
    generationRequest({ n: 6, width: 96, height: 64, stream: true, partialImages: 2, style: null }),
    { onProgress: (p) => seen.push(p) },
  );
  assert.equal(output.images.length, 6);
  for (const image of output.images) assert.deepEqual([image.width, image.height, image.channels], [96, 64, 4]);
  assert.deepEqual(
    seen.map((p) => `${p.step}/${p.totalSteps}`),
    ['1/4', '2/4', '3/4', '4/4'],
  );
  // 2 partial images over 4 steps fall at steps 2 and 3; earlier batches' final images stand in for theirs.
  assert.deepEqual(
    seen.map((p) => p.previews?.length),
    [undefined, 4, 6, undefined],
  );
  assert.equal(output.revisedPrompt, undefined, 'no style, no truncation: the prompt was used as sent');
  const again = await engine.run(generationRequest({ n: 6, width: 96, height: 64, style: null }));
  assert.deepEqual(again.images, output.images, 'the same request gives the same pixels');
});

test('an abort stops the job between steps; the worker serves the next one', async () => {
  const long = new DiffusionEngine(worker, { ...settings, steps: 200, resolution: 512 }, 'tiny');
  const controller = new AbortController();
  let steps = 0;
  const run = long.run(generationRequest({ n: 1 }), {
    signal: controller.signal,
    onProgress: () => (steps++, controller.abort()),
  });
  await assert.rejects(run, EngineAbortedError);
  assert.ok(steps < 200, `stopped after ${steps} of 200 steps`);
  assert.equal((await engine.run(generationRequest({ n: 1, width: 64, height: 64 }))).images.length, 1);
});

test('a worker that dies is replaced by the next job', async () => {
  await engine.run(generationRequest({ n: 1, width: 64, height: 64 }));
  // Terminated between jobs: a thread stopped inside onnxruntime's native run takes the process with it.
  const thread = worker.thread;
  await worker.endThread();
  const next = await engine.run(generationRequest({ n: 1, width: 64, height: 64 }));
  assert.equal(next.images.length, 1);
  assert.notEqual(worker.thread, thread, 'a new thread');
});

test('stageTimings hold every model call of every batch, in ms: a UNet run per step and batch, one decode per image', async () => {
  const output = await engine.run(generationRequest({ n: 5, width: 64, height: 64, style: null }));
  const timings = output.stageTimings!;
  assert.equal(timings.text_encoder!.length, 2, 'the prompt, once per batch');
  assert.equal(timings.unet!.length, 4, '2 steps × 2 batches');
  assert.equal(timings.vae_decoder!.length, 5, 'the decoder runs one image at a time');
  assert.equal(timings.vae_encoder, undefined, 'a generation never encodes');
  for (const runs of Object.values(timings)) for (const ms of runs!) assert.ok(ms >= 0 && ms < 60_000, `${ms} ms`);
});
