// The diffusion pipelines: text-to-image, image-to-image and inpainting over a loaded model.
// Other folders import from here, not from the files behind it.
export { repaintMask } from './images.ts';
export {
  mixSeed,
  PipelineAbortedError,
  type PipelineHooks,
  PipelineInputError,
  type PipelineJob,
  type PipelineResult,
  runPipeline,
} from './pipeline.ts';
export type { Stage, StageTimings } from './timer.ts';
