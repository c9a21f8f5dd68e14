// How an API request becomes a pipeline job: the generation size (the model's native area at the
// request's aspect ratio), the steps and guidance (the deployment's settings, else the model's
// defaults, scaled by `quality`), the prompt (with `style`), and the edit mode. Each mapping is a
// pure function, so every one the README documents is tested directly; plan() puts them together
// and brings the edit inputs to the generation size.
import { resizeTo } from '../../codec/index.ts';
import type { DiffusionSettings, SchedulerName } from '../../config/index.ts';
import { hasTransparentPixel, type ImageRequest, type RawImage } from '../../contract/request.ts';
import { EngineError } from '../engine.ts';
import { type PipelineJob, repaintMask } from './pipeline/index.ts';
import type { SchedulerClassName } from './schedulers/index.ts';
import type { ModelInfo } from './worker/protocol.ts';

export interface DiffusionDefaults {
  steps: number;
  guidanceScale: number;
}

/** Per model: distilled models (LCM; Turbo, recognised by trailing timestep spacing) run few steps. */
export function modelDefaults(info: Pick<ModelInfo, 'family' | 'timestepSpacing'>): DiffusionDefaults {
  if (info.family === 'lcm') return { steps: 4, guidanceScale: 8.5 };
  // SD-Turbo and SDXL-Turbo: 1–4 steps, no guidance (their model cards).
  if (info.timestepSpacing === 'trailing') return { steps: 2, guidanceScale: 0 };
  return { steps: 25, guidanceScale: 7.5 };
}

/** `quality` scales the steps: low halves them, hd/high doubles them (Turbo models stop at 4). */
export function stepsFor(quality: string | null, base: number, distilled: boolean): number {
  const cap = distilled ? 4 : 200;
  if (quality === 'low') return Math.max(1, Math.ceil(base / 2));
  if (quality === 'hd' || quality === 'high') return Math.min(cap, Math.max(base * 2, base + 1));
  return base;
}

/** DALL-E 3's `style` as prompt wording, shown back in `revised_prompt`. */
export const STYLE_SUFFIX: Readonly<Record<'vivid' | 'natural', string>> = {
  vivid: 'vivid colors, dramatic lighting, highly detailed',
  natural: 'natural colors, soft natural light, realistic',
};

export function styledPrompt(prompt: string, style: 'vivid' | 'natural' | null): string {
  return style ? `${prompt.trim()}, ${STYLE_SUFFIX[style]}` : prompt;
}

/**
 * The generation shape: about `resolution`² pixels at the request's aspect ratio, each side a
 * multiple of `align` (the UNet halves the latents three times). The image is resized to the
 * requested size afterwards.
 */
export function generationSize(
  width: number,
  height: number,
  resolution: number,
  align: number,
): { width: number; height: number } {
  // Edits keep any input's size; beyond 4:1 the model would make a strip it was never trained on.
  const aspect = Math.min(4, Math.max(1 / 4, width / height));
  const snap = (v: number) => Math.max(align, Math.round(v / align) * align);
  return { width: snap(resolution * Math.sqrt(aspect)), height: snap(resolution / Math.sqrt(aspect)) };
}

export const SCHEDULER_CLASSES: Readonly<Record<SchedulerName, SchedulerClassName>> = {
  euler: 'EulerDiscreteScheduler',
  'euler-ancestral': 'EulerAncestralDiscreteScheduler',
  ddim: 'DDIMScheduler',
  lcm: 'LCMScheduler',
};

/** Edits without a mask change the whole picture this much; masked edits repaint from pure noise. */
export const DEFAULT_EDIT_STRENGTH = 0.75;
export const DEFAULT_INPAINT_STRENGTH = 1;

export function editStrength(request: Pick<ImageRequest, 'strength'>, masked: boolean): number {
  return request.strength ?? (masked ? DEFAULT_INPAINT_STRENGTH : DEFAULT_EDIT_STRENGTH);
}

/** One request's pipeline settings, also what `revised_prompt` and the logs report. */
export interface Planned {
  job: Omit<PipelineJob, 'n' | 'seed'>;
  /** Per-pixel repaint mask at the requested size, for pasting the untouched area back exactly. */
  mask: Uint8Array | null;
  input: RawImage | null;
}

/** The pipeline job for a request, in the model's native area, with the edit inputs prepared. */
export async function plan(request: ImageRequest, info: ModelInfo, settings: DiffusionSettings): Promise<Planned> {
  const defaults = modelDefaults(info);
  const distilled = info.family === 'lcm' || info.timestepSpacing === 'trailing';
  const resolution = settings.resolution ?? info.nativeResolution;
  const size = generationSize(request.width, request.height, resolution, info.vaeScaleFactor * 8);
  const job: Planned['job'] = {
    prompt: styledPrompt(request.prompt, request.style),
    width: size.width,
    height: size.height,
    steps: stepsFor(request.quality, settings.steps ?? defaults.steps, distilled && settings.steps === undefined),
    guidanceScale: settings.guidanceScale ?? defaults.guidanceScale,
    ...(settings.scheduler ? { scheduler: SCHEDULER_CLASSES[settings.scheduler] } : {}),
    ...(settings.autoencoder ? { autoencoder: settings.autoencoder } : {}),
  };
  const input = request.operation === 'edit' ? (request.images[0] ?? null) : null;
  if (!input) return { job, mask: null, input: null };
  // The tiny autoencoder's latents are the UNet's, like the VAE's, so a tiny deployment edits with whichever encoder
  // the folder has.
  const canEdit = info.canEdit || (settings.autoencoder === 'tiny' && info.tinyEncoder);
  if (!canEdit) throw new EngineError('this model has no vae_encoder, so it cannot edit images');

  // Without a mask, the input's own transparent pixels mark the area to edit (as DALL-E 2 edits do).
  const maskImage = request.mask ?? (hasTransparentPixel(input) ? input : null);
  const mask = maskImage && repaintMask(maskImage);
  const scaledInput = await resizeTo(input, size.width, size.height, 'fill');
  const init: NonNullable<PipelineJob['init']> = { image: scaledInput, strength: editStrength(request, mask !== null) };
  if (maskImage) init.mask = repaintMask(await resizeTo(maskImage, size.width, size.height, 'fill'));
  return { job: { ...job, init }, mask, input };
}
