// Thread settings: the plan divides the machine's cores among the models that can run at once, and
// what it decides reaches onnxruntime (the options given to InferenceSession.create are captured).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import ort from 'onnxruntime-node';

import { loadConfig } from '../../../src/config/index.ts';
import { createDeploymentEngines } from '../../../src/engines/deployment-engines.ts';
import { loadModel } from '../../../src/engines/diffusion/model/index.ts';
import { onnxThreadPlan, planOnnxThreads } from '../../../src/runtime/onnx-threads.ts';
import { inspectFolder } from '../../../src/safety/classifiers/onnx-text-folder.ts';
import { loadTextModel } from '../../../src/safety/classifiers/onnx-text-model.ts';
import { writeTextClassifier } from '../../../tools/model-builder/text-classifier.ts';
import { writeTinyModel } from '../../../tools/model-builder/tiny-sd.ts';

const root = await mkdtemp(join(tmpdir(), 'easel-onnx-threads-'));
test.after(() => rm(root, { recursive: true, force: true }));
let tinyFolder: Promise<string> | undefined;
/** One tiny model folder, written on first use. */
const tinyModel = () => (tinyFolder ??= writeTinyModel(join(root, 'sd'), {}).then(() => join(root, 'sd')));

/** Runs `body` while recording the options of every InferenceSession.create call. */
async function capturingSessionOptions<T>(
  body: () => Promise<T>,
): Promise<{ result: T; options: ort.InferenceSession.SessionOptions[] }> {
  const original = ort.InferenceSession.create;
  const options: ort.InferenceSession.SessionOptions[] = [];
  (ort.InferenceSession as { create: unknown }).create = (
    path: string,
    sessionOptions: ort.InferenceSession.SessionOptions,
  ) => {
    options.push(sessionOptions);
    return (original as (p: string, o: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>)(
      path,
      sessionOptions,
    );
  };
  try {
    return { result: await body(), options };
  } finally {
    (ort.InferenceSession as { create: unknown }).create = original;
  }
}

test('automatic: all cores for one model, divided between models that run at once, one for classifiers', () => {
  const plan = (diffusionModels: number, concurrency: number, cores: number) => {
    const { diffusion, classifier } = planOnnxThreads({ configured: 0, diffusionModels, concurrency, cores });
    return [diffusion, classifier];
  };
  assert.deepEqual(plan(1, 2, 2), [2, 1], 'one folder runs its jobs one after another: both cores');
  assert.deepEqual(plan(2, 2, 2), [1, 1], 'two folders computing together: one core each');
  assert.deepEqual(plan(2, 1, 2), [2, 1], 'a queue of one never runs them together');
  assert.deepEqual(plan(3, 2, 16), [8, 1]);
  assert.deepEqual(plan(3, 4, 16), [5, 1], 'three models at once on 16 cores: 5 each, 15 in all');
  assert.deepEqual(plan(4, 4, 2), [1, 1], 'never fewer than one');
  assert.deepEqual(plan(0, 2, 4), [4, 1], 'no diffusion model: classifiers still get one');
  assert.deepEqual(plan(1, 2, 1), [1, 1]);
});

test('a configured onnx.threads is used as given, for every session', () => {
  assert.deepEqual(planOnnxThreads({ configured: 3, diffusionModels: 2, concurrency: 2, cores: 2 }), {
    diffusion: 3,
    classifier: 3,
    reason: 'onnx.threads = 3',
  });
});

test('the plan of a configuration counts distinct model folders and the queue', () => {
  const config = loadConfig({
    EASEL_DATA_DIR: join(root, 'data'),
    EASEL_MODELS_DIR: root,
    EASEL_QUEUE_CONCURRENCY: '2',
    EASEL_MODEL: 'shared-model',
  });
  // EASEL_MODEL puts every placeholder deployment on one folder: one model, all cores.
  assert.equal(onnxThreadPlan(config, 8).diffusion, 8);
  const two = {
    ...config,
    deployments: [
      config.deployments[0]!,
      {
        ...config.deployments[1]!,
        diffusion: { ...(config.deployments[1] as { diffusion: object }).diffusion, folder: join(root, 'other') },
      },
    ],
  } as typeof config;
  assert.equal(onnxThreadPlan(two, 8).diffusion, 4);
  assert.equal(onnxThreadPlan({ ...two, queue: { ...two.queue, concurrency: 1 } }, 8).diffusion, 8);
  assert.equal(onnxThreadPlan({ ...two, onnx: { ...two.onnx, threads: 3 } }, 8).diffusion, 3);
});

test('loadModel opens every part with the thread count, one inter-op thread, sequential execution, full optimisation and no CPU arena', async () => {
  const folder = await tinyModel();
  const { result: model, options } = await capturingSessionOptions(() => loadModel(folder, { intraOpNumThreads: 2 }));
  await model.release();
  assert.equal(options.length, 4, 'text encoder, UNet, VAE decoder and encoder');
  for (const o of options) {
    assert.equal(o.intraOpNumThreads, 2);
    assert.equal(o.interOpNumThreads, 1);
    assert.equal(o.executionMode, 'sequential');
    assert.equal(o.graphOptimizationLevel, 'all');
    assert.equal(o.enableCpuMemArena, false);
    assert.deepEqual(o.executionProviders, ['cpu']);
  }
});

test("without a thread count, loadModel leaves onnxruntime's own default; tuning options override", async () => {
  const folder = await tinyModel();
  const { result: model, options } = await capturingSessionOptions(() =>
    loadModel(folder, { tuning: { enableCpuMemArena: true, executionMode: 'parallel' } }),
  );
  await model.release();
  for (const o of options) {
    assert.equal('intraOpNumThreads' in o, false);
    assert.equal(o.enableCpuMemArena, true);
    assert.equal(o.executionMode, 'parallel');
  }
});

test('the model worker of a diffusion deployment opens its sessions with the planned threads', async () => {
  const folder = await tinyModel();
  const config = loadConfig({ EASEL_DATA_DIR: join(root, 'data'), EASEL_MODELS_DIR: root, EASEL_MODEL: folder });
  const logged: object[] = [];
  const engines = createDeploymentEngines(config, { info: (o) => logged.push(o), error: (o) => logged.push(o) });
  try {
    await engines.loaded;
    const planned = onnxThreadPlan(config).diffusion;
    assert.equal(engines.get('dall-e-3').model?.threads, planned);
    assert.ok(
      logged.some((o) => (o as { onnxThreads?: number }).onnxThreads === planned),
      'the plan is logged at start-up',
    );
  } finally {
    await engines.close();
  }
});

test('an ONNX text classifier opens its session with the given threads and the same fixed options', async () => {
  const folder = join(root, 'classifier');
  await writeTextClassifier(folder, {
    labels: ['hate'],
    problemType: 'multi_label_classification',
    weights: { grrr: { hate: 4 } },
  });
  const plan = await inspectFolder({ id: 'tox', folder, threads: 1, maxWindows: 4 });
  const { result: model, options } = await capturingSessionOptions(() => loadTextModel(plan));
  await model.session.release();
  assert.equal(options.length, 1);
  assert.equal(options[0]!.intraOpNumThreads, 1);
  assert.equal(options[0]!.interOpNumThreads, 1);
  assert.equal(options[0]!.graphOptimizationLevel, 'all');
});
