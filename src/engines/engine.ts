import type { ImageRequest, RawImage } from '../contract/request.ts';

/** What an engine reports after each step; drives streaming partial images and progress bars. */
export interface EngineProgress {
  /** 1-based step just finished. */
  step: number;
  totalSteps: number;
  /** A preview of each of the `n` images at this step, when the engine can produce one cheaply. */
  previews?: RawImage[];
}

/**
 * Whether step `step` of `totalSteps` is due to carry the next partial image when `planned` of
 * `wanted` are planned already: the wanted ones spread evenly over the steps, the last step being the
 * final image. The runner (which turns previews into partial images) and the engines that only decode
 * the previews it will send share it.
 */
export function partialImageDue(step: number, totalSteps: number, planned: number, wanted: number): boolean {
  if (planned >= wanted || step >= totalSteps) return false;
  return step >= Math.ceil(((planned + 1) * totalSteps) / (wanted + 1));
}

/** The steps (1-based) at which `wanted` partial images fall, in order. */
export function partialImageSteps(totalSteps: number, wanted: number): number[] {
  const steps: number[] = [];
  for (let step = 1; step < totalSteps; step++)
    if (partialImageDue(step, totalSteps, steps.length, wanted)) steps.push(step);
  return steps;
}

export interface EngineRunContext {
  onProgress?: (progress: EngineProgress) => void;
  /** Aborted when the request is canceled or times out; engines check it between steps. */
  signal?: AbortSignal;
}

export interface EngineOutput {
  /** Exactly `request.n` images of exactly `request.width` × `request.height`, RGBA. */
  images: RawImage[];
  /** What was actually used to generate, when it differs from the prompt (DALL-E 3 `revised_prompt`). */
  revisedPrompt?: string;
  /**
   * Milliseconds of each model call, per stage (diffusion: text_encoder, text_encoder_2, unet once
   * per step, vae_encoder, vae_decoder), in call order across batches. For metrics; engines without
   * models leave it out.
   */
  stageTimings?: Partial<Record<string, number[]>>;
}

/**
 * An engine turns one normalized request into raw pixels. It never sees HTTP, multipart or base64,
 * and never encodes: codec/ does that once for every engine.
 */
export interface Engine {
  /** Short name for logs and /readyz, e.g. "placeholder" or "diffusion:sd-turbo". */
  readonly name: string;
  /** Generate (or edit, when `request.operation` is "edit") `request.n` images. */
  run(request: ImageRequest, context?: EngineRunContext): Promise<EngineOutput>;
  /** Release sessions, threads and files. */
  close?(): Promise<void>;
}

/** Thrown by engines for failures that belong to one job (bad model output, aborted run). */
export class EngineError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
  }
}

/** Thrown when the run was aborted through its signal. */
export class EngineAbortedError extends EngineError {
  constructor() {
    super('generation was aborted');
    this.name = 'EngineAbortedError';
  }
}
