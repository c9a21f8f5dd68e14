// Messages between the server's event loop and a model worker thread. Images travel as transferred
// buffers (no copies); everything else is plain structured-clone data.
import type { RawImage } from '../../../contract/request.ts';
import { partialImageSteps } from '../../engine.ts';
import type { ModelFamily } from '../model/index.ts';
import type { PipelineJob, PipelineResult } from '../pipeline/index.ts';

export interface WorkerOptions {
  folder: string;
  executionProviders: string[];
  /** intra-op threads per session, as planned by src/runtime/onnx-threads.ts; 0 = onnxruntime's own default. */
  threads: number;
  /** LoadModelOptions.fuseAttention (onnx.fuseAttention); unset = on. */
  fuseAttention?: boolean;
}

/** What the engine needs to know of a loaded model to plan requests. */
export interface ModelInfo {
  family: ModelFamily;
  familyReason: string;
  inpainting: boolean;
  /** The folder has vae_encoder/model.onnx. */
  canEdit: boolean;
  nativeResolution: number;
  vaeScaleFactor: number;
  schedulerClass: string;
  timestepSpacing: string;
  /** The folder has vae_tiny_decoder/model.onnx (and vae_tiny_encoder/model.onnx). */
  tinyDecoder: boolean;
  tinyEncoder: boolean;
  /** Set when the model's scheduler class is substituted. */
  schedulerNote?: string;
  loadMs: number;
  /** intra-op threads each of the model's sessions was opened with; 0 = onnxruntime's own default. */
  threads: number;
  /** LoadedModel.attentionRewrite: the UNet's attention blocks fused at load, and those left with why. */
  attentionRewrite: { fused: number; skipped: number; reason?: string; firstSkipped?: string } | null;
}

/**
 * A streamed request's partial images: `wanted` of them spread over the steps of all `batches`
 * (this run is batch number `batch`, from 0). Only those steps decode a preview.
 */
export interface PreviewPlan {
  wanted: number;
  batch: number;
  batches: number;
}

/** One denoising step of a run, with the previews of the steps whose partial images are streamed. */
export interface StepProgress {
  step: number;
  totalSteps: number;
  previews?: RawImage[];
}

/** The model worker's methods (src/runtime/worker-rpc.ts carries them). */
export type ModelWorkerMethods = {
  /** Loads the folder's sessions once; the thread holds them until it is closed. */
  load: { input: WorkerOptions; output: ModelInfo };
  run: { input: { job: PipelineJob; previews: PreviewPlan | null }; output: PipelineResult; progress: StepProgress };
};

export type FailureKind = 'aborted' | 'input' | 'runtime';

/**
 * A failed run's kind, from the name of the error the worker threw (a cancelled run that never started is an
 * AbortError).
 */
export function failureKind(errorName: string): FailureKind {
  if (errorName === 'PipelineAbortedError' || errorName === 'AbortError') return 'aborted';
  return errorName === 'PipelineInputError' ? 'input' : 'runtime';
}

/** Buffers that cross the thread boundary come back as plain Uint8Arrays. */
export function reviveImage(image: RawImage): RawImage {
  const data = image.data as Uint8Array;
  return { ...image, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}

export function transferList(images: readonly RawImage[]): ArrayBuffer[] {
  return images.map((image) => image.data.buffer as ArrayBuffer);
}

/** Whether step `step` of this run's `totalSteps` is one whose preview the request will stream. */
export function isPreviewStep(plan: PreviewPlan, step: number, totalSteps: number): boolean {
  return partialImageSteps(totalSteps * plan.batches, plan.wanted).includes(plan.batch * totalSteps + step);
}
