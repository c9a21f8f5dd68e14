// A model worker thread: loads one model folder (all its sessions, once) and runs pipeline jobs
// one after another, so onnxruntime's synchronous runs never block the server's event loop.
// Cancellation arrives as a message and is seen between steps.
import { parentPort, workerData } from 'node:worker_threads';
import { createScheduler } from '../schedulers/index.ts';
import { loadModel, type LoadedModel } from '../model/index.ts';
import { PipelineAbortedError, PipelineInputError, runPipeline, type PipelineJob } from '../pipeline/index.ts';
import { isPreviewStep, transferList, type FailureKind, type PreviewPlan, type FromWorker, type ToWorker, type WorkerOptions } from './protocol.ts';

const port = parentPort!;
const options = workerData as WorkerOptions;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

const controllers = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();
let model: LoadedModel | undefined;

async function start(): Promise<void> {
  const started = performance.now();
  try {
    model = await loadModel(options.folder, {
      executionProviders: options.executionProviders,
      ...(options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
    });
  } catch (error) {
    post({ type: 'load-failed', message: (error as Error).message });
    port.close();
    return;
  }
  const { note } = createScheduler(model.schedulerConfig);
  post({
    type: 'ready',
    info: {
      family: model.family,
      familyReason: model.folder.familyReason,
      inpainting: model.inpainting,
      canEdit: model.sessions.vaeEncoder !== undefined,
      tinyDecoder: model.sessions.tinyDecoder !== undefined,
      tinyEncoder: model.sessions.tinyEncoder !== undefined,
      nativeResolution: model.nativeResolution,
      vaeScaleFactor: model.vaeScaleFactor,
      schedulerClass: model.schedulerConfig._class_name,
      timestepSpacing: model.schedulerConfig.timestep_spacing,
      ...(note ? { schedulerNote: note } : {}),
      loadMs: performance.now() - started,
      threads: options.threads,
    },
  });
}

async function run(id: number, job: PipelineJob, previews: PreviewPlan | null, signal: AbortSignal): Promise<void> {
  try {
    const result = await runPipeline(model!, job, {
      signal,
      // Only the steps whose preview will be streamed decode one, so a step waits at most for its own decode.
      async onStep(step, totalSteps, preview) {
        const images = previews && isPreviewStep(previews, step, totalSteps) ? await preview() : undefined;
        post({ type: 'step', id, step, totalSteps, ...(images ? { previews: images } : {}) }, images ? transferList(images) : []);
      },
    });
    post({ type: 'done', id, result }, transferList(result.images));
  } catch (error) {
    const kind: FailureKind = error instanceof PipelineAbortedError ? 'aborted' : error instanceof PipelineInputError ? 'input' : 'runtime';
    post({ type: 'failed', id, kind, message: (error as Error).message });
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'run': {
      const controller = new AbortController();
      controllers.set(message.id, controller);
      queue = queue.then(() => run(message.id, message.job, message.previews, controller.signal)).finally(() => controllers.delete(message.id));
      break;
    }
    case 'cancel':
      controllers.get(message.id)?.abort();
      break;
    case 'close':
      for (const controller of controllers.values()) controller.abort();
      queue = queue.then(async () => {
        await model?.release();
        post({ type: 'closed' });
        port.close();
      });
      break;
  }
});

await start();
