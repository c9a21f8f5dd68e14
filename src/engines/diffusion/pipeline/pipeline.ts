// The diffusion loop, written out step by step as the diffusers pipelines do it:
// text-to-image, image-to-image (`strength`) and inpainting (a 9-channel UNet when the model has
// one, latent blending with a 4-channel UNet otherwise). Guidance is batched into one UNet call
// ([uncond × n, cond × n]), the `n` images of a request are one batch, and every random number
// comes from the request's seed, so the same job gives the same pixels.
import type ort from 'onnxruntime-node';

import type { RawImage } from '../../../contract/request.ts';
import { floatTensor, type LoadedModel, tensorToFloat32, timestepTensor, TINY_DECODER_FILE } from '../model/index.ts';
import { normalSource } from '../random.ts';
import {
  createScheduler,
  img2imgStartIndex,
  type NormalSource,
  type Scheduler,
  type SchedulerConfig,
} from '../schedulers/index.ts';
import { type AutoencoderChoice, decodeImage, encodeToLatents, hasEncoder, previewImages } from './autoencoder.ts';
import { imageToTensor, latentMask, maskedImageTensor } from './images.ts';
import { encodePrompt, guidanceEmbedding, type PromptEmbedding, stack, zeroEmbedding } from './text.ts';
import { RunTimer, type StageTimings } from './timer.ts';

export interface PipelineJob {
  prompt: string;
  /** Empty: the unconditional embedding is that of "" (zeros for SDXL). */
  negativePrompt?: string;
  n: number;
  /** Pixel size; multiples of the VAE scale factor (the engine picks multiples of 64). */
  width: number;
  height: number;
  steps: number;
  /** > 1 turns on classifier-free guidance (LCM embeds it instead). */
  guidanceScale: number;
  seed: number;
  /** Index of this batch's first image in the request: image k's noise depends on (seed, firstImage + k) only. */
  firstImage?: number;
  /** The autoencoder that encodes the init image and decodes the result; default full (the VAE). */
  autoencoder?: AutoencoderChoice;
  /** Overrides the model's scheduler class (its βs and spacing are kept). */
  scheduler?: SchedulerConfig['_class_name'];
  /** img2img and inpainting: the picture to start from, at width × height. */
  init?: {
    image: RawImage;
    /** 0 < strength ≤ 1: how much of the schedule runs (1 = from pure noise). */
    strength: number;
    /** Per pixel, 1 = repaint; absent = change the whole image (img2img). */
    mask?: Uint8Array;
  };
}

export interface PipelineHooks {
  /**
   * After each denoising step; the next step waits for the promise it returns. `preview` decodes
   * each image's current estimate: with the tiny decoder at full size when the model has one, else
   * the linear latent preview at latent size. Only the steps that call it pay for it.
   */
  onStep?(step: number, totalSteps: number, preview: () => Promise<RawImage[]>): void | Promise<void>;
  /** Checked before each model call; the run stops with `PipelineAbortedError`. */
  signal?: AbortSignal;
}

export interface PipelineResult {
  /** RGB at width × height. */
  images: RawImage[];
  timings: StageTimings;
  /** The prompt was cut to the encoder's 77 tokens. */
  truncated: boolean;
  usedTokens: number;
  /** When truncated: the part of the prompt the model saw. */
  usedPrompt?: string;
  steps: number;
  schedulerNote?: string;
}

export class PipelineAbortedError extends Error {
  constructor() {
    super('generation was aborted');
    this.name = 'PipelineAbortedError';
  }
}

/** A job the model cannot do (e.g. img2img without a VAE encoder, a size the VAE cannot divide). */
export class PipelineInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineInputError';
  }
}

/** One run's fixed facts, shared by its steps (diffusers keeps them on the pipeline object). */
interface Run {
  model: LoadedModel;
  /** The job as run: a 9-channel inpainting model's text-to-image job already has its all-ones mask. */
  job: PipelineJob;
  timer: RunTimer;
  /** Throws PipelineAbortedError once the caller's signal has fired; called before each model call. */
  abort: () => void;
  autoencoder: AutoencoderChoice;
  /** Latent width and height, the values of one latent channel, and of one image's 4 channels. */
  lw: number;
  lh: number;
  plane: number;
  perImage: number;
  /** Classifier-free guidance: the UNet sees the batch twice, [uncond × n, cond × n]. */
  cfg: boolean;
  unetBatch: number;
  /** A 9-channel inpainting UNet: its input is latents ‖ mask ‖ masked-image latents. */
  inpaint9: boolean;
}

function describeRun(model: LoadedModel, job: PipelineJob, abort: () => void): Run {
  const { n, width, height } = job;
  const factor = model.vaeScaleFactor;
  const lw = width / factor;
  const lh = height / factor;
  const plane = lw * lh;
  const isLcm = model.family === 'lcm' || (job.scheduler ?? model.schedulerConfig._class_name) === 'LCMScheduler';
  // LCM distils guidance into the UNet (timestep_cond); batching uncond/cond would be wrong there.
  const cfg = job.guidanceScale > 1 && !isLcm;
  const unetBatch = cfg ? 2 * n : n;
  const inpaint9 = Boolean(job.init?.mask) && model.inpainting;
  return {
    model,
    job,
    timer: new RunTimer(),
    abort,
    autoencoder: job.autoencoder ?? 'full',
    lw,
    lh,
    plane,
    perImage: 4 * plane,
    cfg,
    unetBatch,
    inpaint9,
  };
}

/** 1. The prompt's embedding and, with guidance, the negative prompt's (diffusers `encode_prompt`). */
async function encodePrompts({
  model,
  job,
  timer,
  abort,
  cfg,
}: Run): Promise<{ cond: PromptEmbedding; uncond: PromptEmbedding | undefined }> {
  const cond = await encodePrompt(model, timer, job.prompt);
  abort();
  let uncond: PromptEmbedding | undefined;
  if (cfg) {
    const negative = job.negativePrompt ?? '';
    uncond =
      model.family === 'sdxl' && negative === '' ? zeroEmbedding(cond) : await encodePrompt(model, timer, negative);
    abort();
  }
  return { cond, uncond };
}

/**
 * 1. The UNet inputs every step shares: the text embeddings, SDXL's pooled embeddings and size ids, LCM's guidance
 * embedding.
 */
function conditioningFeeds(
  { model, job, unetBatch }: Run,
  cond: PromptEmbedding,
  uncond: PromptEmbedding | undefined,
): Record<string, ort.Tensor> {
  const { n, width, height } = job;
  const embeds = [...(uncond ? [{ values: uncond.hidden, count: n }] : []), { values: cond.hidden, count: n }];
  const contract = model.contracts.unet;
  const staticFeeds: Record<string, ort.Tensor> = {
    encoder_hidden_states: floatTensor(contract.encoderHiddenStatesType, stack(embeds), [
      unetBatch,
      cond.seq,
      cond.width,
    ]),
  };
  if (contract.textEmbeds && cond.pooled) {
    const pooled = [...(uncond ? [{ values: uncond.pooled!, count: n }] : []), { values: cond.pooled, count: n }];
    staticFeeds[contract.textEmbeds.name] = floatTensor(contract.textEmbeds.type, stack(pooled), [
      unetBatch,
      cond.pooled.length,
    ]);
  }
  if (contract.timeIds) {
    // [original h, w, crop top, left, target h, w] (docs/diffusion.md, "SDXL conditioning"); the refiner's 5-value form
    // is not supported.
    const ids = Float32Array.of(height, width, 0, 0, height, width);
    staticFeeds[contract.timeIds.name] = floatTensor(
      contract.timeIds.type,
      stack([{ values: ids, count: unetBatch }]),
      [unetBatch, 6],
    );
  }
  if (contract.timestepCond) {
    const dim = contract.timestepCond.size ?? 256;
    const w = guidanceEmbedding(job.guidanceScale, dim);
    staticFeeds[contract.timestepCond.name] = floatTensor(
      contract.timestepCond.type,
      stack([{ values: w, count: unetBatch }]),
      [unetBatch, dim],
    );
  }
  return staticFeeds;
}

/** 2. The model's scheduler config, with the class the job overrides it with (its βs and spacing are kept). */
function schedulerConfigFor(model: LoadedModel, job: PipelineJob): SchedulerConfig {
  const config = job.scheduler ? { ...model.schedulerConfig, _class_name: job.scheduler } : model.schedulerConfig;
  return config as SchedulerConfig;
}

/**
 * 2. The scheduler and the timesteps that run (diffusers `set_timesteps`, then img2img's
 * `get_timesteps`): with strength < 1 the run starts part-way down the schedule, LCM choosing its
 * own shortened schedule instead.
 */
export function prepareTimesteps(
  config: SchedulerConfig,
  steps: number,
  strength: number,
): { scheduler: Scheduler; note?: string; timesteps: number[] } {
  const { scheduler, note } = createScheduler(config);
  let start = 0;
  if (scheduler.config._class_name === 'LCMScheduler' && strength < 1) {
    scheduler.setTimesteps(steps, { strength });
  } else {
    scheduler.setTimesteps(steps);
    // At least one step runs, whatever steps × strength gives (the Turbo models need steps·strength ≥ 1).
    start = Math.min(img2imgStartIndex(steps, strength), steps - 1);
    if (start > 0) scheduler.setBeginIndex(start);
  }
  const timesteps = scheduler.timesteps.slice(start);
  return { scheduler, note, timesteps };
}

/**
 * 3. The starting noise: one stream per image, so image k depends on (seed, firstImage + k) only;
 * and the stream that the VAE's sampling and the stochastic schedulers draw from.
 */
function prepareNoise({ job, perImage }: Run): { noise: Float32Array; stepNoise: NormalSource } {
  const { n } = job;
  const noise = new Float32Array(n * perImage);
  for (let k = 0; k < n; k++) {
    const normal = normalSource(mixSeed(job.seed, (job.firstImage ?? 0) + k));
    for (let i = 0; i < perImage; i++) noise[k * perImage + i] = normal();
  }
  const stepNoise = normalSource(mixSeed(job.seed, 0x5eed + (job.firstImage ?? 0)));
  return { noise, stepNoise };
}

/** What img2img and inpainting start from, each repeated for the batch's n images. */
interface InitLatents {
  /** The init image's latents; absent for text-to-image and for a 9-channel UNet at strength 1. */
  imageLatents: Float32Array | undefined;
  /** The mask at latent size, 1 = repaint (inpainting only). */
  maskLatent: Float32Array | undefined;
  /** The latents of the init image with the repaint area blanked (9-channel UNet only). */
  maskedLatents: Float32Array | undefined;
}

/** 3. img2img and inpainting: the init image (and masked image) through the VAE encoder, the mask at latent size. */
async function encodeInitImage(
  { model, job, timer, abort, autoencoder, inpaint9 }: Run,
  stepNoise: NormalSource,
): Promise<InitLatents> {
  const { n, width, height } = job;
  const factor = model.vaeScaleFactor;
  const strength = job.init?.strength ?? 1;
  let imageLatents: Float32Array | undefined;
  let maskLatent: Float32Array | undefined;
  let maskedLatents: Float32Array | undefined;
  if (job.init) {
    const pixels = imageToTensor(job.init.image);
    if (job.init.mask) maskLatent = latentMask(job.init.mask, width, height, factor);
    if (inpaint9) {
      const masked = await encodeToLatents(
        model,
        timer,
        autoencoder,
        maskedImageTensor(pixels, job.init.mask!),
        { width, height },
        stepNoise,
      );
      maskedLatents = repeat(masked, n);
    }
    if (!inpaint9 || strength < 1)
      imageLatents = repeat(await encodeToLatents(model, timer, autoencoder, pixels, { width, height }, stepNoise), n);
    abort();
  }
  return { imageLatents, maskLatent, maskedLatents };
}

/**
 * 3. The latents the loop starts from: the init image noised to the first timestep (strength < 1), else scaled noise.
 */
function prepareLatents(
  scheduler: Scheduler,
  noise: Float32Array,
  imageLatents: Float32Array | undefined,
  strength: number,
  first: number,
): Float32Array {
  if (imageLatents && strength < 1) return scheduler.addNoise(imageLatents, noise, first);
  return noise.map((v) => v * scheduler.initNoiseSigma);
}

/**
 * 4. The UNet's sample: the scaled latents, with mask and masked-image latents for a 9-channel UNet, twice over with
 * guidance.
 */
function unetSample(
  { model, job, lw, lh, plane, cfg, unetBatch, inpaint9 }: Run,
  scaled: Float32Array,
  init: InitLatents,
): ort.Tensor {
  const one = inpaint9 ? concatChannels(scaled, init.maskLatent!, init.maskedLatents!, job.n, plane) : scaled;
  const input = cfg ? stack([{ values: one, count: 2 }]) : one;
  return floatTensor(model.contracts.unet.sampleType, input, [unetBatch, inpaint9 ? 9 : 4, lh, lw]);
}

export async function runPipeline(
  model: LoadedModel,
  job: PipelineJob,
  hooks: PipelineHooks = {},
): Promise<PipelineResult> {
  const started = performance.now();
  const abort = () => {
    if (hooks.signal?.aborted) throw new PipelineAbortedError();
  };
  check(model, job);
  abort();
  if (model.inpainting && !job.init?.mask) job = asInpainting(job);
  const run = describeRun(model, job, abort);
  const { timer, cfg, unetBatch, inpaint9, plane, perImage } = run;
  const { n, width, height } = job;
  const strength = job.init?.strength ?? 1;
  const contract = model.contracts.unet;

  // 1. Conditioning.
  const { cond, uncond } = await encodePrompts(run);
  const staticFeeds = conditioningFeeds(run, cond, uncond);

  // 2. Scheduler and timesteps.
  const { scheduler, note, timesteps } = prepareTimesteps(schedulerConfigFor(model, job), job.steps, strength);

  // 3. Initial latents: noise, or the init image noised to where the schedule starts.
  const { noise, stepNoise } = prepareNoise(run);
  const init = await encodeInitImage(run, stepNoise);
  const { imageLatents, maskLatent } = init;
  let latents = prepareLatents(scheduler, noise, imageLatents, strength, timesteps[0]!);

  // 4. The denoising loop.
  for (let i = 0; i < timesteps.length; i++) {
    abort();
    const t = timesteps[i]!;
    const feeds = {
      ...staticFeeds,
      sample: unetSample(run, scheduler.scaleModelInput(latents, t), init),
      timestep: timestepTensor(contract.timestep, t, unetBatch),
    };
    const out = await timer.run('unet', model.sessions.unet, feeds);
    let noisePred = tensorToFloat32(out[contract.output]!);
    if (cfg) noisePred = guide(noisePred, n * perImage, job.guidanceScale);
    const stepped = scheduler.step(noisePred, t, latents, stepNoise);
    latents = stepped.prevSample;
    if (imageLatents && maskLatent && !inpaint9) {
      // 4-channel inpainting: keep the known area on the image's own noisy trajectory (docs/diffusion.md, "Inpainting
      // and image-to-image").
      const next = timesteps[i + 1];
      const known = next === undefined ? imageLatents : scheduler.addNoise(imageLatents, noise, next);
      latents = blend(latents, known, maskLatent, n, plane);
    }
    // Previews show the current estimate of the clean image when the scheduler gives one.
    const shown = stepped.predOriginalSample ?? latents;
    await hooks.onStep?.(i + 1, timesteps.length, () => previewImages(model, timer, shown, n, { width, height }));
  }
  abort();

  // 5. Decode one image at a time (docs/diffusion.md, "Decoding one image at a time": batched fp16 VAE decoders
  // misbehave, and memory stays flat).
  const images = await decodeLatents(run, latents);
  return {
    images,
    timings: { runs: timer.runs, totalMs: performance.now() - started },
    truncated: cond.truncated,
    usedTokens: cond.usedTokens,
    ...(cond.usedPrompt !== undefined ? { usedPrompt: cond.usedPrompt } : {}),
    steps: timesteps.length,
    ...(note ? { schedulerNote: note } : {}),
  };
}

/** 5. Each image's latents through the decoder, one at a time. */
async function decodeLatents(
  { model, job, timer, abort, autoencoder }: Run,
  latents: Float32Array,
): Promise<RawImage[]> {
  const { n, width, height } = job;
  const images: RawImage[] = [];
  for (let k = 0; k < n; k++) {
    abort();
    images.push(await decodeImage(model, timer, autoencoder, latents, k, { width, height }));
  }
  return images;
}

function check(model: LoadedModel, job: PipelineJob): void {
  const f = model.vaeScaleFactor;
  if (!Number.isInteger(job.width / f) || !Number.isInteger(job.height / f) || job.width <= 0 || job.height <= 0) {
    throw new PipelineInputError(`size ${job.width}x${job.height} is not a multiple of the VAE scale factor ${f}`);
  }
  if (!Number.isInteger(job.n) || job.n < 1) throw new PipelineInputError(`n must be a positive integer, got ${job.n}`);
  if (!Number.isInteger(job.steps) || job.steps < 1)
    throw new PipelineInputError(`steps must be a positive integer, got ${job.steps}`);
  if (job.init) {
    const { image, strength, mask } = job.init;
    if (!(strength > 0 && strength <= 1)) throw new PipelineInputError(`strength must be in (0, 1], got ${strength}`);
    if (image.width !== job.width || image.height !== job.height) {
      throw new PipelineInputError(
        `the init image is ${image.width}x${image.height}, the job ${job.width}x${job.height}`,
      );
    }
    if (mask && mask.length !== job.width * job.height)
      throw new PipelineInputError('the mask does not match the image size');
    if (!hasEncoder(model, job.autoencoder ?? 'full'))
      throw new PipelineInputError('this model has no vae_encoder, so it cannot edit images');
  }
  if (job.autoencoder === 'tiny' && !model.sessions.tinyDecoder) {
    throw new PipelineInputError(`the tiny autoencoder was chosen but the model has no ${TINY_DECODER_FILE}`);
  }
}
/**
 * A 9-channel UNet always needs a mask and a masked image. Without a mask it repaints everything:
 * the mask is all ones, and a generation starts from a blank (mid-grey) image at strength 1, as
 * diffusers' inpainting pipeline does when it is given an empty picture.
 */
function asInpainting(job: PipelineJob): PipelineJob {
  const mask = new Uint8Array(job.width * job.height).fill(1);
  if (job.init) return { ...job, init: { ...job.init, mask } };
  const image = {
    width: job.width,
    height: job.height,
    channels: 3 as const,
    data: Buffer.alloc(job.width * job.height * 3, 128),
  };
  return { ...job, init: { image, strength: 1, mask } };
}

/** noise_uncond + g·(noise_cond − noise_uncond), from the [uncond…, cond…] batch. */
function guide(pred: Float32Array, half: number, scale: number): Float32Array {
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const u = pred[i]!;
    out[i] = u + scale * (pred[half + i]! - u);
  }
  return out;
}

/** Per image: latents (4) ‖ mask (1) ‖ masked-image latents (4), the 9-channel UNet input. */
function concatChannels(
  latents: Float32Array,
  mask: Float32Array,
  masked: Float32Array,
  n: number,
  plane: number,
): Float32Array {
  const out = new Float32Array(n * 9 * plane);
  for (let k = 0; k < n; k++) {
    const base = k * 9 * plane;
    out.set(latents.subarray(k * 4 * plane, (k + 1) * 4 * plane), base);
    out.set(mask, base + 4 * plane);
    out.set(masked.subarray(k * 4 * plane, (k + 1) * 4 * plane), base + 5 * plane);
  }
  return out;
}

/** (1 − mask)·known + mask·generated, the mask broadcast over channels and images. */
function blend(
  generated: Float32Array,
  known: Float32Array,
  mask: Float32Array,
  n: number,
  plane: number,
): Float32Array {
  const out = new Float32Array(generated.length);
  for (let j = 0; j < n * 4; j++) {
    const base = j * plane;
    for (let i = 0; i < plane; i++) out[base + i] = mask[i] ? generated[base + i]! : known[base + i]!;
  }
  return out;
}

function repeat(values: Float32Array, n: number): Float32Array {
  return stack([{ values, count: n }]);
}

/** A 32-bit seed per (request seed, stream), so streams never overlap for nearby seeds. */
export function mixSeed(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
