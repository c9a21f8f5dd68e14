// Latents ↔ pixels through the model's autoencoders: the full VAE (AutoencoderKL) or the tiny one
// (TAESD/TAESDXL, diffusers AutoencoderTiny), chosen per job, and the previews of intermediate
// latents (tiny decoder when the folder has one, the linear latent preview otherwise).
//
// Both autoencoders work in the UNet's latent space up to their own scaling factor: the VAE's
// latents are multiplied by its scaling_factor (0.18215 / 0.13025), TAESD's by 1.0, so the tiny
// encoder's latents and the VAE encoder's are interchangeable inputs to the denoising loop, and either
// decoder can turn the loop's latents into pixels.
import type { RawImage } from '../../../contract/request.ts';
import { floatTensor, type LoadedModel, tensorToFloat32, type VaeDecoderContract } from '../model/index.ts';
import type { NormalSource } from '../schedulers/index.ts';
import { latentPreview, tensorToImage } from './images.ts';
import type { RunTimer, Stage } from './timer.ts';

/** `full`: the model's VAE; `tiny`: its vae_tiny_decoder (and vae_tiny_encoder when present, else the VAE encoder). */
export type AutoencoderChoice = 'full' | 'tiny';

interface Decoder {
  stage: Stage;
  session: NonNullable<LoadedModel['sessions']['vaeDecoder']>;
  contract: VaeDecoderContract;
  scaling: number;
}

function decoderFor(model: LoadedModel, choice: AutoencoderChoice, stage?: Stage): Decoder {
  const { sessions, contracts } = model;
  if (choice === 'tiny' && sessions.tinyDecoder && contracts.tinyDecoder) {
    return {
      stage: stage ?? 'vae_tiny_decoder',
      session: sessions.tinyDecoder,
      contract: contracts.tinyDecoder,
      scaling: model.tinyScalingFactor,
    };
  }
  return {
    stage: stage ?? 'vae_decoder',
    session: sessions.vaeDecoder,
    contract: contracts.vaeDecoder,
    scaling: model.vaeScalingFactor,
  };
}

/**
 * Image `k` of the batch's latents [n, 4, h, w] as RGB at width × height; the decoder's output is clamped to [-1, 1].
 */
export async function decodeImage(
  model: LoadedModel,
  timer: RunTimer,
  choice: AutoencoderChoice,
  latents: Float32Array,
  k: number,
  size: { width: number; height: number },
  stage?: Stage,
): Promise<RawImage> {
  const { width, height } = size;
  const lw = width / model.vaeScaleFactor;
  const lh = height / model.vaeScaleFactor;
  const perImage = 4 * lw * lh;
  const decoder = decoderFor(model, choice, stage);
  const one = latents.subarray(k * perImage, (k + 1) * perImage).map((v) => v / decoder.scaling);
  const out = await timer.run(decoder.stage, decoder.session, {
    [decoder.contract.input]: floatTensor(decoder.contract.inputType, one, [1, 4, lh, lw]),
  });
  const tensor = out[decoder.contract.output]!;
  const [, , h, w] = tensor.dims as number[];
  const part = decoder.session === model.sessions.vaeDecoder ? 'vae_decoder' : 'vae_tiny_decoder';
  if (h !== height || w !== width) throw new Error(`${part} returned ${w}x${h} for ${width}x${height}`);
  return tensorToImage(tensorToFloat32(tensor), 0, width, height);
}

/** Encode one [3, H, W] image in [-1, 1] into UNet-space latents [4, h, w]. */
export async function encodeToLatents(
  model: LoadedModel,
  timer: RunTimer,
  choice: AutoencoderChoice,
  pixels: Float32Array,
  size: { width: number; height: number },
  rng: NormalSource,
): Promise<Float32Array> {
  const { width, height } = size;
  const tiny =
    choice === 'tiny' && model.sessions.tinyEncoder !== undefined && model.contracts.tinyEncoder !== undefined;
  const c = tiny ? model.contracts.tinyEncoder! : model.contracts.vaeEncoder!;
  const session = tiny ? model.sessions.tinyEncoder! : model.sessions.vaeEncoder!;
  const scaling = tiny ? model.tinyScalingFactor : model.vaeScalingFactor;
  const out = await timer.run(tiny ? 'vae_tiny_encoder' : 'vae_encoder', session, {
    [c.input]: floatTensor(c.inputType, pixels, [1, 3, height, width]),
  });
  const values = tensorToFloat32(out[c.output]!);
  const plane = (width / model.vaeScaleFactor) * (height / model.vaeScaleFactor);
  const latents = new Float32Array(4 * plane);
  if (c.outputKind === 'latent_sample') {
    for (let i = 0; i < latents.length; i++) latents[i] = values[i]! * scaling;
  } else {
    // mean ‖ logvar: sample = mean + exp(logvar / 2)·ε, logvar clamped to [-30, 20] as diffusers'
    // DiagonalGaussianDistribution does.
    for (let i = 0; i < latents.length; i++) {
      const logvar = Math.min(20, Math.max(-30, values[4 * plane + i]!));
      latents[i] = (values[i]! + Math.exp(0.5 * logvar) * rng()) * scaling;
    }
  }
  return latents;
}

/** Can this job edit images: it needs an encoder, the tiny one or the VAE's. */
export function hasEncoder(model: LoadedModel, choice: AutoencoderChoice): boolean {
  return model.sessions.vaeEncoder !== undefined || (choice === 'tiny' && model.sessions.tinyEncoder !== undefined);
}

/**
 * Previews of each image's latents (the scheduler's predicted clean latents when it gives them, as
 * ComfyUI shows): the tiny decoder at full size when the folder has one, timed as stage `preview`;
 * else the linear latent preview at latent size, which costs microseconds.
 */
export async function previewImages(
  model: LoadedModel,
  timer: RunTimer,
  latents: Float32Array,
  n: number,
  size: { width: number; height: number },
): Promise<RawImage[]> {
  const lw = size.width / model.vaeScaleFactor;
  const lh = size.height / model.vaeScaleFactor;
  if (!model.sessions.tinyDecoder) {
    const kind = model.family === 'sdxl' ? 'sdxl' : 'sd';
    return Array.from({ length: n }, (_, k) => latentPreview(latents, k * 4 * lw * lh, lw, lh, kind));
  }
  const images: RawImage[] = [];
  for (let k = 0; k < n; k++) images.push(await decodeImage(model, timer, 'tiny', latents, k, size, 'preview'));
  return images;
}
