// The diffusion loop, written out step by step as the diffusers pipelines do it:
// text-to-image, image-to-image (`strength`) and inpainting (a 9-channel UNet when the model has
// one, latent blending with a 4-channel UNet otherwise). Guidance is batched into one UNet call
// ([uncond × n, cond × n]), the `n` images of a request are one batch, and every random number
// comes from the request's seed, so the same job gives the same pixels.
import ort from 'onnxruntime-node';
import type { RawImage } from '../../../contract/request.ts';
import { floatTensor, tensorToFloat32, timestepTensor, TINY_DECODER_FILE, type LoadedModel } from '../model/index.ts';
import { normalSource } from '../random.ts';
import { createScheduler, img2imgStartIndex, type SchedulerConfig } from '../schedulers/index.ts';
import { decodeImage, encodeImage, hasEncoder, previewImages, type AutoencoderChoice } from './autoencoder.ts';
import { imageToTensor, latentMask, maskedImageTensor } from './images.ts';
import { encodePrompt, guidanceEmbedding, stack, zeroEmbedding, type PromptEmbedding } from './text.ts';
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

export async function runPipeline(model: LoadedModel, job: PipelineJob, hooks: PipelineHooks = {}): Promise<PipelineResult> {
  const started = performance.now();
  const timer = new RunTimer();
  const abort = () => {
    if (hooks.signal?.aborted) throw new PipelineAbortedError();
  };
  check(model, job);
  abort();
  if (model.inpainting && !job.init?.mask) job = asInpainting(job);

  const { n, width, height } = job;
  const autoencoder = job.autoencoder ?? 'full';
  const factor = model.vaeScaleFactor;
  const lw = width / factor;
  const lh = height / factor;
  const plane = lw * lh;
  const perImage = 4 * plane;
  const isLcm = model.family === 'lcm' || (job.scheduler ?? model.schedulerConfig._class_name) === 'LCMScheduler';
  // LCM distils guidance into the UNet (timestep_cond); batching uncond/cond would be wrong there.
  const cfg = job.guidanceScale > 1 && !isLcm;
  const unetBatch = cfg ? 2 * n : n;

  // 1. Conditioning.
  const cond = await encodePrompt(model, timer, job.prompt);
  abort();
  let uncond: PromptEmbedding | undefined;
  if (cfg) {
    const negative = job.negativePrompt ?? '';
    uncond = model.family === 'sdxl' && negative === '' ? zeroEmbedding(cond) : await encodePrompt(model, timer, negative);
    abort();
  }
  const embeds = [...(uncond ? [{ values: uncond.hidden, count: n }] : []), { values: cond.hidden, count: n }];
  const contract = model.contracts.unet;
  const staticFeeds: Record<string, ort.Tensor> = {
    encoder_hidden_states: floatTensor(contract.encoderHiddenStatesType, stack(embeds), [unetBatch, cond.seq, cond.width]),
  };
  if (contract.textEmbeds && cond.pooled) {
    const pooled = [...(uncond ? [{ values: uncond.pooled!, count: n }] : []), { values: cond.pooled, count: n }];
    staticFeeds[contract.textEmbeds.name] = floatTensor(contract.textEmbeds.type, stack(pooled), [unetBatch, cond.pooled.length]);
  }
  if (contract.timeIds) {
    // [original h, w, crop top, left, target h, w] (§1.4); the refiner's 5-value form is not supported.
    const ids = Float32Array.of(height, width, 0, 0, height, width);
    staticFeeds[contract.timeIds.name] = floatTensor(contract.timeIds.type, stack([{ values: ids, count: unetBatch }]), [unetBatch, 6]);
  }
  if (contract.timestepCond) {
    const dim = contract.timestepCond.size ?? 256;
    const w = guidanceEmbedding(job.guidanceScale, dim);
    staticFeeds[contract.timestepCond.name] = floatTensor(contract.timestepCond.type, stack([{ values: w, count: unetBatch }]), [unetBatch, dim]);
  }

  // 2. Scheduler and timesteps.
  const config = job.scheduler ? { ...model.schedulerConfig, _class_name: job.scheduler } : model.schedulerConfig;
  const { scheduler, note } = createScheduler(config as SchedulerConfig);
  const strength = job.init?.strength ?? 1;
  let start = 0;
  if (scheduler.config._class_name === 'LCMScheduler' && strength < 1) {
    scheduler.setTimesteps(job.steps, { strength });
  } else {
    scheduler.setTimesteps(job.steps);
    // At least one step runs, whatever steps × strength gives (the Turbo models need steps·strength ≥ 1).
    start = Math.min(img2imgStartIndex(job.steps, strength), job.steps - 1);
    if (start > 0) scheduler.setBeginIndex(start);
  }
  const timesteps = scheduler.timesteps.slice(start);

  // 3. Initial latents: one noise stream per image, so image k depends on (seed, k) only.
  const noise = new Float32Array(n * perImage);
  for (let k = 0; k < n; k++) {
    const normal = normalSource(mixSeed(job.seed, (job.firstImage ?? 0) + k));
    for (let i = 0; i < perImage; i++) noise[k * perImage + i] = normal();
  }
  const stepNoise = normalSource(mixSeed(job.seed, 0x5eed + (job.firstImage ?? 0)));

  let imageLatents: Float32Array | undefined;
  let maskLatent: Float32Array | undefined;
  let maskedLatents: Float32Array | undefined;
  const inpaint9 = Boolean(job.init?.mask) && model.inpainting;
  if (job.init) {
    const pixels = imageToTensor(job.init.image);
    if (job.init.mask) maskLatent = latentMask(job.init.mask, width, height, factor);
    if (inpaint9) {
      const masked = await encodeImage(model, timer, autoencoder, maskedImageTensor(pixels, job.init.mask!), { width, height }, stepNoise);
      maskedLatents = repeat(masked, n);
    }
    if (!inpaint9 || strength < 1) imageLatents = repeat(await encodeImage(model, timer, autoencoder, pixels, { width, height }, stepNoise), n);
    abort();
  }
  let latents: Float32Array;
  if (imageLatents && strength < 1) {
    latents = scheduler.addNoise(imageLatents, noise, timesteps[0]!);
  } else {
    latents = noise.map((v) => v * scheduler.initNoiseSigma);
  }

  // 4. The denoising loop.
  const inChannels = inpaint9 ? 9 : 4;
  for (let i = 0; i < timesteps.length; i++) {
    abort();
    const t = timesteps[i]!;
    const scaled = scheduler.scaleModelInput(latents, t);
    const one = inpaint9 ? concatChannels(scaled, maskLatent!, maskedLatents!, n, plane) : scaled;
    const input = cfg ? stack([{ values: one, count: 2 }]) : one;
    const feeds = {
      ...staticFeeds,
      sample: floatTensor(contract.sampleType, input, [unetBatch, inChannels, lh, lw]),
      timestep: timestepTensor(contract.timestep, t, unetBatch),
    };
    const out = await timer.run('unet', model.sessions.unet, feeds);
    let noisePred = tensorToFloat32(out[contract.output]!);
    if (cfg) noisePred = guide(noisePred, n * perImage, job.guidanceScale);
    const stepped = scheduler.step(noisePred, t, latents, stepNoise);
    latents = stepped.prevSample;
    if (imageLatents && maskLatent && !inpaint9) {
      // 4-channel inpainting: keep the known area on the image's own noisy trajectory (§1.5).
      const next = timesteps[i + 1];
      const known = next === undefined ? imageLatents : scheduler.addNoise(imageLatents, noise, next);
      latents = blend(latents, known, maskLatent, n, plane);
    }
    // Previews show the current estimate of the clean image when the scheduler gives one.
    const shown = stepped.predOriginalSample ?? latents;
    await hooks.onStep?.(i + 1, timesteps.length, () => previewImages(model, timer, shown, n, { width, height }));
  }
  abort();

  // 5. Decode one image at a time (pitfall 6: batched fp16 VAE decoders misbehave, and memory stays flat).
  const images: RawImage[] = [];
  for (let k = 0; k < n; k++) {
    abort();
    images.push(await decodeImage(model, timer, autoencoder, latents, k, { width, height }));
  }
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

function check(model: LoadedModel, job: PipelineJob): void {
  const f = model.vaeScaleFactor;
  if (!Number.isInteger(job.width / f) || !Number.isInteger(job.height / f) || job.width <= 0 || job.height <= 0) {
    throw new PipelineInputError(`size ${job.width}x${job.height} is not a multiple of the VAE scale factor ${f}`);
  }
  if (!Number.isInteger(job.n) || job.n < 1) throw new PipelineInputError(`n must be a positive integer, got ${job.n}`);
  if (!Number.isInteger(job.steps) || job.steps < 1) throw new PipelineInputError(`steps must be a positive integer, got ${job.steps}`);
  if (job.init) {
    const { image, strength, mask } = job.init;
    if (!(strength > 0 && strength <= 1)) throw new PipelineInputError(`strength must be in (0, 1], got ${strength}`);
    if (image.width !== job.width || image.height !== job.height) {
      throw new PipelineInputError(`the init image is ${image.width}x${image.height}, the job ${job.width}x${job.height}`);
    }
    if (mask && mask.length !== job.width * job.height) throw new PipelineInputError('the mask does not match the image size');
    if (!hasEncoder(model, job.autoencoder ?? 'full')) throw new PipelineInputError('this model has no vae_encoder, so it cannot edit images');
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
  const image = { width: job.width, height: job.height, channels: 3 as const, data: Buffer.alloc(job.width * job.height * 3, 128) };
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
function concatChannels(latents: Float32Array, mask: Float32Array, masked: Float32Array, n: number, plane: number): Float32Array {
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
function blend(generated: Float32Array, known: Float32Array, mask: Float32Array, n: number, plane: number): Float32Array {
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
