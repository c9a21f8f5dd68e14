// The diffusion engine of one deployment: plans each API request into pipeline jobs (plan.ts),
// runs them in the model's worker thread, and brings the pictures to exactly the requested size.
// Deployments that name the same model folder share one worker, so its sessions exist once.
import { resizeTo } from '../../codec/index.ts';
import type { DiffusionSettings } from '../../config/index.ts';
import type { ImageRequest, RawImage } from '../../contract/request.ts';
import { type Engine, EngineAbortedError, EngineError, type EngineOutput, type EngineRunContext } from '../engine.ts';
import { TINY_DECODER_FILE } from './model/index.ts';
import type { PipelineResult } from './pipeline/index.ts';
import { plan, type Planned } from './plan.ts';
import { ModelLoadError, type ModelWorker, WorkerJobError } from './worker/host.ts';
import type { ModelInfo } from './worker/protocol.ts';

/** Images generated per pipeline call; larger `n` runs as several batches (memory grows with the batch). */
export const MAX_BATCH = 4;

export class DiffusionEngine implements Engine {
  readonly name: string;
  private info: ModelInfo | undefined;

  constructor(
    private readonly worker: ModelWorker,
    private readonly settings: DiffusionSettings,
    modelName: string,
  ) {
    this.name = `diffusion:${modelName}`;
  }

  /** Loads the model (once per folder); rejects with the reason the deployment cannot serve. */
  async load(): Promise<ModelInfo> {
    const info = await this.worker.load();
    if (this.settings.autoencoder === 'tiny' && !info.tinyDecoder) {
      throw new ModelLoadError(
        `diffusion.autoencoder is "tiny" but the model folder has no ${TINY_DECODER_FILE} (see "easel pull --tiny-autoencoder")`,
      );
    }
    this.info = info;
    return info;
  }

  async run(request: ImageRequest, context: EngineRunContext = {}): Promise<EngineOutput> {
    // A request admitted while the model was loading waits for it; a failed load fails the request.
    let info = this.info;
    try {
      info ??= await this.load();
    } catch (error) {
      throw new EngineError(`the model could not be loaded: ${(error as Error).message}`);
    }
    const planned = await plan(request, info, this.settings);
    const batches: number[] = [];
    for (let left = request.n; left > 0; left -= MAX_BATCH) batches.push(Math.min(MAX_BATCH, left));
    const images: RawImage[] = [];
    let result: PipelineResult | undefined;
    let done = 0;
    const stageTimings: Partial<Record<string, number[]>> = {};
    // Previews cost a decode (or a linear map) and a resize: only the steps of streamed requests whose partial images
    // are sent get them.
    const wantPreviews = request.stream && request.partialImages > 0;
    // Progress is delivered in order and before run() returns, however long a preview takes to scale.
    let delivered: Promise<void> = Promise.resolve();
    const report = (step: number, totalSteps: number, previews: RawImage[] | undefined) => {
      const { onProgress } = context;
      if (!onProgress) return;
      const progress = { step: done + step, totalSteps: totalSteps * batches.length };
      delivered = delivered
        .then(async () => {
          const scaled =
            previews && (await Promise.all(previews.map((p) => resizeTo(p, request.width, request.height, 'fill'))));
          // Earlier batches are final already; their images stand in as their own previews.
          onProgress(scaled ? { ...progress, previews: [...images, ...scaled] } : progress);
        })
        .catch(() => {});
    };
    for (const [b, n] of batches.entries()) {
      try {
        result = await this.worker.run(
          { ...planned.job, n, seed: request.seed, firstImage: b * MAX_BATCH },
          {
            previews: wantPreviews ? { wanted: request.partialImages, batch: b, batches: batches.length } : null,
            signal: context.signal,
            onStep: report,
          },
        );
      } catch (error) {
        throw asEngineError(error);
      }
      await delivered;
      done += result.steps;
      for (const [stage, runs] of Object.entries(result.timings.runs)) (stageTimings[stage] ??= []).push(...runs);
      for (const image of result.images) images.push(await finish(image, request, planned));
    }
    const used = result?.usedPrompt ?? planned.job.prompt;
    return { images, stageTimings, ...(used !== request.prompt ? { revisedPrompt: used } : {}) };
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}

/** To the requested size and RGBA; for masked edits the untouched area is the input's own pixels. */
async function finish(image: RawImage, request: ImageRequest, planned: Planned): Promise<RawImage> {
  const out = await resizeTo(image, request.width, request.height, 'fill');
  const { mask, input } = planned;
  if (mask && input) {
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) input.data.copy(out.data, i * 4, i * 4, i * 4 + 4);
    }
  }
  return out;
}

function asEngineError(error: unknown): Error {
  if (error instanceof WorkerJobError && error.kind === 'aborted') return new EngineAbortedError();
  if (error instanceof EngineError) return error;
  return new EngineError(`diffusion failed: ${(error as Error).message}`, { cause: error });
}
