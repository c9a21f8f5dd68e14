// How an API request becomes a pipeline job: the generation size (the model's native area at the
// request's aspect ratio), the steps and guidance (the deployment's settings, else the model's
// defaults, scaled by `quality`), the prompt (with `style`), and the edit mode. Pure functions, so
// every mapping the README documents is tested directly.
import type { SchedulerName } from '../../config/index.ts';
import type { ImageRequest } from '../../contract/request.ts';
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
export function generationSize(width: number, height: number, resolution: number, align: number): { width: number; height: number } {
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
