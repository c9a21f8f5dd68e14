// The diffusion pipelines: text-to-image, image-to-image and inpainting over a loaded model.
// Other folders import from here, not from the files behind it.
export { runPipeline, mixSeed, PipelineAbortedError, PipelineInputError, type PipelineHooks, type PipelineJob, type PipelineResult } from './pipeline.ts';
export { repaintMask } from './images.ts';
export type { Stage, StageTimings } from './timer.ts';
