/**
 * From a model output to the predicted clean sample x0, for each `prediction_type`. Two
 * parameterisations: σ-space for the Euler family (x_t = x0 + σ·ε) and ᾱ-space for DDIM and LCM
 * (x_t = √ᾱ·x0 + √(1−ᾱ)·ε). Element-wise in float64, stored as float32.
 */
import type { PredictionType } from './config.ts';

/** scheduling_euler_discrete.py `step`, "1. compute predicted original sample (x_0)" (s_churn = 0, so σ̂ = σ). */
export function sigmaSpaceX0(
  prediction: PredictionType,
  output: Float32Array,
  sample: Float32Array,
  sigma: number,
): Float32Array {
  const x0 = new Float32Array(sample.length);
  if (prediction === 'epsilon') {
    for (let i = 0; i < x0.length; i++) x0[i] = (sample[i] as number) - sigma * (output[i] as number);
  } else if (prediction === 'v_prediction') {
    // denoised = model_output · c_out + input · c_skip
    const cOut = -sigma / Math.sqrt(sigma * sigma + 1);
    const cSkip = 1 / (sigma * sigma + 1);
    for (let i = 0; i < x0.length; i++) x0[i] = (output[i] as number) * cOut + (sample[i] as number) * cSkip;
  } else {
    x0.set(output);
  }
  return x0;
}

export interface AlphaSpacePrediction {
  x0: Float32Array;
  /** The noise implied by x0 (DDIM's `pred_epsilon`). */
  epsilon: Float32Array;
}

/** scheduling_ddim.py `step`, "3. compute predicted original sample from predicted noise" (also LCM's step 4). */
export function alphaSpaceX0(
  prediction: PredictionType,
  output: Float32Array,
  sample: Float32Array,
  alphaProdT: number,
): AlphaSpacePrediction {
  const sqrtAlpha = Math.sqrt(alphaProdT);
  const sqrtBeta = Math.sqrt(1 - alphaProdT);
  const x0 = new Float32Array(sample.length);
  const epsilon = new Float32Array(sample.length);
  for (let i = 0; i < x0.length; i++) {
    const [x, o] = [sample[i] as number, output[i] as number];
    if (prediction === 'epsilon') {
      x0[i] = (x - sqrtBeta * o) / sqrtAlpha;
      epsilon[i] = o;
    } else if (prediction === 'v_prediction') {
      x0[i] = sqrtAlpha * x - sqrtBeta * o;
      epsilon[i] = sqrtAlpha * o + sqrtBeta * x;
    } else {
      x0[i] = o;
      epsilon[i] = (x - sqrtAlpha * o) / sqrtBeta;
    }
  }
  return { x0, epsilon };
}

/** `clip_sample`: clamp x0 to ±range in place (pixel-space models; SD configs turn it off). */
export function clipInPlace(x0: Float32Array, range: number): void {
  for (let i = 0; i < x0.length; i++) x0[i] = Math.min(range, Math.max(-range, x0[i] as number));
}

/** `add_noise` of DDPM/DDIM/LCM: √ᾱ_t·x0 + √(1−ᾱ_t)·ε. */
export function alphaSpaceAddNoise(original: Float32Array, noise: Float32Array, alphaProdT: number): Float32Array {
  const [a, b] = [Math.sqrt(alphaProdT), Math.sqrt(1 - alphaProdT)];
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = a * (original[i] as number) + b * (noise[i] as number);
  return out;
}
