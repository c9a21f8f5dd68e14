// Messages between the server's event loop and a model worker thread. Images travel as transferred
// buffers (no copies); everything else is plain structured-clone data.
import type { RawImage } from '../../../contract/request.ts';
import type { ModelFamily } from '../model/index.ts';
import type { PipelineJob, PipelineResult } from '../pipeline/index.ts';

export interface WorkerOptions {
  folder: string;
  executionProviders: string[];
  /** intra-op threads per session, as planned by src/runtime/onnx-threads.ts; 0 = onnxruntime's own default. */
  threads: number;
}

/** What the engine needs to know of a loaded model to plan requests. */
export interface ModelInfo {
  family: ModelFamily;
  familyReason: string;
  inpainting: boolean;
  canEdit: boolean;
  nativeResolution: number;
  vaeScaleFactor: number;
  schedulerClass: string;
  timestepSpacing: string;
  /** Set when the model's scheduler class is substituted. */
  schedulerNote?: string;
  loadMs: number;
  /** intra-op threads each of the model's sessions was opened with; 0 = onnxruntime's own default. */
  threads: number;
}

export type ToWorker =
  | { type: 'run'; id: number; job: PipelineJob; previews: boolean }
  | { type: 'cancel'; id: number }
  | { type: 'close' };

export type FailureKind = 'aborted' | 'input' | 'runtime';

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'load-failed'; message: string }
  | { type: 'step'; id: number; step: number; totalSteps: number; previews?: RawImage[] }
  | { type: 'done'; id: number; result: PipelineResult }
  | { type: 'failed'; id: number; kind: FailureKind; message: string }
  | { type: 'closed' };

/** Buffers that cross the thread boundary come back as plain Uint8Arrays. */
export function reviveImage(image: RawImage): RawImage {
  const data = image.data as Uint8Array;
  return { ...image, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}

export function transferList(images: readonly RawImage[]): ArrayBuffer[] {
  return images.map((image) => image.data.buffer as ArrayBuffer);
}
