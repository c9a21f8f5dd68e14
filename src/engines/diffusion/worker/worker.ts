// A model worker thread: loads one model folder (all its sessions, once) and runs pipeline jobs
// one after another, so onnxruntime's synchronous runs never block the server's event loop.
// Cancellation arrives as a message and is seen between steps.
import { serveRpc, Transferring } from '../../../runtime/worker-rpc-serve.ts';
import { type LoadedModel, loadModel } from '../model/index.ts';
import { runPipeline } from '../pipeline/index.ts';
import { createScheduler } from '../schedulers/index.ts';
import {
  isPreviewStep,
  type ModelInfo,
  type ModelWorkerMethods,
  transferList,
  type WorkerOptions,
} from './protocol.ts';

let model: LoadedModel | undefined;

async function load(options: WorkerOptions): Promise<ModelInfo> {
  const started = performance.now();
  model = await loadModel(options.folder, {
    executionProviders: options.executionProviders,
    ...(options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
    ...(options.fuseAttention !== undefined ? { fuseAttention: options.fuseAttention } : {}),
  });
  const rewrite = model.attentionRewrite;
  const first = rewrite?.skipped[0];
  const { note } = createScheduler(model.schedulerConfig);
  return {
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
    attentionRewrite: rewrite && {
      fused: rewrite.fused,
      skipped: rewrite.skipped.length,
      ...(rewrite.reason ? { reason: rewrite.reason } : {}),
      ...(first ? { firstSkipped: `${first.node}: ${first.reason}` } : {}),
    },
  };
}

serveRpc<ModelWorkerMethods>(
  {
    load,
    // A failure is thrown as the pipeline's own error; its name tells the host its kind (failureKind).
    async run({ job, previews }, { signal, progress }) {
      const result = await runPipeline(model!, job, {
        signal,
        // Only the steps whose preview will be streamed decode one, so a step waits at most for its own decode.
        async onStep(step, totalSteps, preview) {
          const images = previews && isPreviewStep(previews, step, totalSteps) ? await preview() : undefined;
          progress({ step, totalSteps, ...(images ? { previews: images } : {}) }, images ? transferList(images) : []);
        },
      });
      return new Transferring(result, transferList(result.images));
    },
  },
  { onClose: () => model?.release() },
);
