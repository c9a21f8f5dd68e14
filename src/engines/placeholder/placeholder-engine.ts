import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';

import type { ImageRequest, RawImage } from '../../contract/request.ts';
import type { Engine, EngineOutput, EngineRunContext } from '../engine.ts';
import { EngineAbortedError, partialImageDue } from '../engine.ts';
import { type CardText, paintCard } from './card.ts';
import { blendWithInput, editRegion } from './edit.ts';
import { averageColour, makePalette, type Palette } from './palette.ts';
import { blockAverage } from './preview.ts';
import { fnv1a, mixSeed, mulberry32 } from './random.ts';
import { layoutShapes, paintBackground, paintShadow, paintShape } from './scene.ts';

/** Steps the placeholder pretends to take, so progress bars and partial images have something to show. */
const TOTAL_STEPS = 4;
/** Preview block size per step, as a fraction of the shorter side; the last step is the picture itself. */
const PREVIEW_BLOCKS = [1 / 16, 1 / 48, 1 / 128];

/**
 * The engine every deployment uses until a diffusion model is installed: offline, instant and
 * deterministic. It paints a prompt-coloured abstract picture with a card that says plainly that
 * it is a placeholder, so nobody mistakes it for a broken model.
 */
export class PlaceholderEngine implements Engine {
  readonly name = 'placeholder';
  readonly #stepMs: number;

  /** `stepMs`: how long each step takes (a deployment's `placeholder.stepMs`; default 0, no wait). */
  constructor(options: { stepMs?: number } = {}) {
    this.#stepMs = options.stepMs ?? 0;
  }

  async run(request: ImageRequest, context: EngineRunContext = {}): Promise<EngineOutput> {
    const { signal, onProgress } = context;
    throwIfAborted(signal);
    const palette = makePalette(request.prompt, request.style, averageColour(request.images.slice(1)));
    const images: RawImage[] = [];
    for (let index = 0; index < request.n; index++) {
      images.push(renderOne(request, index, palette));
      // Let the server breathe (and a cancel arrive) between images and steps, as a real engine would.
      await nextTurn();
      throwIfAborted(signal);
    }
    // Previews only where a partial image will be made of them (streamed requests with partial_images,
    // at the steps due): on a 1024² picture each is a few megabytes written for nothing otherwise.
    const wanted = request.stream ? request.partialImages : 0;
    let planned = 0;
    for (let step = 1; step <= TOTAL_STEPS; step++) {
      if (this.#stepMs > 0) await wait(this.#stepMs, signal);
      else if (step > 1) await nextTurn();
      throwIfAborted(signal);
      if (!onProgress) continue;
      let previews: RawImage[] | undefined;
      // The last step's previews are the final images themselves.
      if (wanted > 0 && step === TOTAL_STEPS) previews = images;
      else if (partialImageDue(step, TOTAL_STEPS, planned, wanted)) {
        planned++;
        previews = images.map((image) => preview(image, step));
      }
      onProgress(previews ? { step, totalSteps: TOTAL_STEPS, previews } : { step, totalSteps: TOTAL_STEPS });
    }
    return { images };
  }
}

/** A timer that ends early, as an engine abort, when the job's signal fires. */
async function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted) throw new EngineAbortedError();
    throw error;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new EngineAbortedError();
}

function preview(image: RawImage, step: number): RawImage {
  const fraction = PREVIEW_BLOCKS[step - 1] ?? 0;
  const block = Math.max(2, Math.round(Math.min(image.width, image.height) * fraction));
  return blockAverage(image, block);
}

/** Image `index` of the request: its own layout, the request's palette, and (for edits) the input. */
function renderOne(request: ImageRequest, index: number, palette: Palette): RawImage {
  const { width, height } = request;
  const image: RawImage = { width, height, channels: 4, data: Buffer.alloc(width * height * 4) };
  const random = mulberry32(mixSeed(request.seed, fnv1a(request.prompt), index));

  paintBackground(image, palette.corners, request.transparentBackground);
  for (const shape of layoutShapes(random, width, height, palette)) {
    if (!request.transparentBackground) paintShadow(image, shape);
    paintShape(image, shape);
  }
  const whole = { left: 0, top: 0, width, height };
  const input = request.operation === 'edit' ? request.images[0] : undefined;
  if (!input) {
    paintCard(image, palette, cardText(request, index), whole);
  } else if (request.mask) {
    // The card goes inside the edited region, the only part of the render that shows.
    paintCard(image, palette, cardText(request, index), editRegion(request.mask) ?? whole);
    blendWithInput(image, input, request.mask);
  } else {
    // Unmasked: the render is blended over all of the input, and the card on top stays legible.
    blendWithInput(image, input, null);
    paintCard(image, palette, cardText(request, index), whole);
  }
  return image;
}

function cardText(request: ImageRequest, index: number): CardText {
  const facts = [
    request.operation === 'edit' ? 'edit' : null,
    `${request.width}x${request.height}`,
    request.style,
    request.quality,
    `seed ${request.seed}`,
    request.n > 1 ? `${index + 1} of ${request.n}` : null,
  ];
  return {
    label: 'PLACEHOLDER',
    subtitle: 'easel · no diffusion model installed',
    meta: facts.filter((fact) => fact !== null).join(' · '),
    prompt: request.prompt,
  };
}
