// Prompt conditioning: token ids → text encoder(s) → the UNet's encoder_hidden_states (and SDXL's
// pooled text_embeds). SD 1.x/2.x/LCM take the last hidden state of one encoder; SDXL concatenates
// the penultimate hidden states of both encoders and adds the pooled projection of the second
// (docs/diffusion.md, "SDXL conditioning").
import type ort from 'onnxruntime-node';

import { idsTensor, type LoadedModel, tensorToFloat32, type TextEncoderContract } from '../model/index.ts';
import type { ClipTokenizer } from '../tokenizer/index.ts';
import type { RunTimer, Stage } from './timer.ts';

export interface PromptEmbedding {
  /** [1, seq, width]. */
  hidden: Float32Array;
  seq: number;
  width: number;
  /** SDXL: [1, P] pooled projection of text_encoder_2. */
  pooled?: Float32Array;
  /** The prompt was longer than the encoder's 77 tokens and its tail was cut. */
  truncated: boolean;
  /** How many prompt tokens the encoder saw (without BOS/EOS). */
  usedTokens: number;
  /** When truncated: the text the encoder saw, decoded back from its tokens. */
  usedPrompt?: string;
}

export async function encodePrompt(model: LoadedModel, timer: RunTimer, prompt: string): Promise<PromptEmbedding> {
  const first = await runEncoder(
    timer,
    'text_encoder',
    model.sessions.textEncoder,
    model.contracts.textEncoder,
    model.tokenizer,
    prompt,
    model.family === 'sdxl',
  );
  if (model.family !== 'sdxl') return first;
  const second = await runEncoder(
    timer,
    'text_encoder_2',
    model.sessions.textEncoder2!,
    model.contracts.textEncoder2!,
    model.tokenizer2!,
    prompt,
    true,
  );
  if (first.seq !== second.seq) throw new Error(`the two text encoders gave ${first.seq} and ${second.seq} positions`);
  const width = first.width + second.width;
  const hidden = new Float32Array(first.seq * width);
  for (let s = 0; s < first.seq; s++) {
    hidden.set(first.hidden.subarray(s * first.width, (s + 1) * first.width), s * width);
    hidden.set(second.hidden.subarray(s * second.width, (s + 1) * second.width), s * width + first.width);
  }
  return { ...first, hidden, width, pooled: second.pooled };
}

/** SDXL's `force_zeros_for_empty_prompt`: the unconditional embedding of an empty negative prompt is zeros. */
export function zeroEmbedding(like: PromptEmbedding): PromptEmbedding {
  return {
    hidden: new Float32Array(like.hidden.length),
    seq: like.seq,
    width: like.width,
    pooled: like.pooled && new Float32Array(like.pooled.length),
    truncated: false,
    usedTokens: 0,
  };
}

async function runEncoder(
  timer: RunTimer,
  stage: Stage,
  session: ort.InferenceSession,
  contract: TextEncoderContract,
  tokenizer: ClipTokenizer,
  prompt: string,
  penultimate: boolean,
): Promise<PromptEmbedding> {
  const encoding = tokenizer.encode(prompt);
  const ids = encoding.inputIds;
  const out = await timer.run(stage, session, {
    [contract.idsName]: idsTensor(contract.idsType, ids, [1, ids.length]),
  });
  // SDXL conditions on the penultimate layer; exports that carry no hidden_states.N fall back to the last.
  const name =
    penultimate && contract.hiddenStates.length >= 2
      ? contract.hiddenStates[contract.hiddenStates.length - 2]!
      : contract.lastHiddenState;
  const tensor = out[name]!;
  const hidden = Float32Array.from(tensorToFloat32(tensor));
  const [, seq, width] = tensor.dims as number[];
  const pooledTensor = contract.pooled ? out[contract.pooled] : undefined;
  return {
    hidden,
    seq: seq!,
    width: width!,
    pooled: pooledTensor && Float32Array.from(tensorToFloat32(pooledTensor)),
    truncated: encoding.truncated,
    usedTokens: Math.min(encoding.tokenCount, tokenizer.maxLength - 2),
    ...(encoding.truncated ? { usedPrompt: tokenizer.decode(ids) } : {}),
  };
}

/** `count` copies of one [1, …] embedding, then `count` of another: the batch layout [uncond…, cond…] of guidance. */
export function stack(parts: Array<{ values: Float32Array; count: number }>): Float32Array {
  const total = parts.reduce((sum, p) => sum + p.values.length * p.count, 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const { values, count } of parts) {
    for (let i = 0; i < count; i++, offset += values.length) out.set(values, offset);
  }
  return out;
}

/**
 * LCM's guidance embedding (diffusers `get_guidance_scale_embedding`): w = (scale − 1)·1000, a
 * sinusoidal embedding of `dim` values, sin half then cos half, zero-padded when `dim` is odd.
 */
export function guidanceEmbedding(guidanceScale: number, dim: number): Float32Array {
  const w = (guidanceScale - 1) * 1000;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  const step = half > 1 ? Math.log(10000) / (half - 1) : 0;
  for (let i = 0; i < half; i++) {
    // float32 at each stage, as torch computes it.
    const freq = Math.fround(Math.exp(-step * i));
    const angle = Math.fround(w * freq);
    out[i] = Math.sin(angle);
    out[half + i] = Math.cos(angle);
  }
  return out;
}
