import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ImageRequest, RawImage } from '../../contract/request.ts';
import type { Engine, EngineOutput, EngineRunContext } from '../engine.ts';
import { EngineAbortedError } from '../engine.ts';
import { type CardText, paintCard } from './card.ts';
import { blendWithInput, editRegionCentre } from './edit.ts';
import { type Palette, averageColour, makePalette } from './palette.ts';
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

  async run(request: ImageRequest, context: EngineRunContext = {}): Promise<EngineOutput> {
    const { signal, onProgress } = context;
    throwIfAborted(signal);
    const palette = makePalette(request.prompt, request.style, averageColour(request.images.slice(1)));
    const images: RawImage[] = [];
    for (let index = 0; index < request.n; index++) {
      images.push(renderOne(request, index, palette));
      throwIfAborted(signal);
    }
    for (let step = 1; step <= TOTAL_STEPS; step++) {
      // Let the server breathe (and a cancel arrive) between steps, as a real engine would.
      await nextTurn();
      throwIfAborted(signal);
      if (!onProgress) continue;
      const previews = step === TOTAL_STEPS ? images : images.map((image) => preview(image, step));
      onProgress({ step, totalSteps: TOTAL_STEPS, previews });
    }
    return { images };
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
  const input = request.operation === 'edit' ? request.images[0] : undefined;
  const centre = (input && request.mask && editRegionCentre(request.mask)) || { x: width / 2, y: height / 2 };
  paintCard(image, palette, cardText(request, index), centre);
  if (input) blendWithInput(image, input, request.mask);
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
