// Opens one InferenceSession per part and reads each part's I/O contract from the session's own
// metadata (onnxruntime-node ≥ 1.22). Exporters disagree on dtypes and ranks (docs/diffusion.md,
// "Exporter generations"), so nothing here is assumed from the family; a contract that cannot work is refused at load
// with the part and tensor named, instead of failing mid-generation with ORT's generic message.
import { dirname, relative } from 'node:path';

import ort from 'onnxruntime-node';

import type { SchedulerConfig } from '../schedulers/index.ts';
import { type ClipTokenizer, loadClipTokenizer } from '../tokenizer/index.ts';
import { rewriteModelFile, withExternalDataFolder } from './attention-rewrite.ts';
import {
  inspectModelFolder,
  type ModelFamily,
  type ModelFolder,
  ModelFolderError,
  TINY_DECODER_FILE,
  TINY_ENCODER_FILE,
} from './folder.ts';
import type { FloatType, IdsType, TimestepShape } from './tensors.ts';

type Dim = number | string;
interface TensorInfo {
  name: string;
  type: string;
  shape: readonly Dim[];
}

export interface TextEncoderContract {
  idsName: string;
  idsType: IdsType;
  /** Fixed sequence length, or null when symbolic. */
  sequenceLength: number | null;
  lastHiddenState: string;
  /** `pooler_output` (CLIPTextModel) or `text_embeds` (CLIPTextModelWithProjection), when exported. */
  pooled: string | null;
  /** `hidden_states.N` names ordered by N; SDXL takes the penultimate (docs/diffusion.md, "SDXL conditioning"). */
  hiddenStates: string[];
  outputType: FloatType;
  /** The last dim of last_hidden_state when fixed. */
  hiddenSize: number | null;
}

export interface ExtraInput {
  name: string;
  type: FloatType;
  /** The last dim when fixed (text_embeds 1280, time_ids 6, timestep_cond time_cond_proj_dim). */
  size: number | null;
}

export interface UnetContract {
  sampleType: FloatType;
  /** 4, 9 (inpainting), or null when the exporter left it symbolic. */
  sampleChannels: 4 | 9 | null;
  timestep: TimestepShape;
  encoderHiddenStatesType: FloatType;
  crossAttentionDim: number | null;
  /** SDXL's added conditioning. */
  textEmbeds: ExtraInput | null;
  timeIds: ExtraInput | null;
  /** LCM's guidance embedding input. */
  timestepCond: ExtraInput | null;
  output: string;
  outputType: FloatType;
}

export interface VaeDecoderContract {
  input: string;
  inputType: FloatType;
  output: string;
  outputType: FloatType;
}

export interface VaeEncoderContract {
  input: string;
  inputType: FloatType;
  output: string;
  /**
   * `latent_sample` is already sampled (4 ch); `latent_parameters` is mean ‖ logvar (8 ch; docs/diffusion.md, "VAE
   * encoder output").
   */
  outputKind: 'latent_sample' | 'latent_parameters';
  outputType: FloatType;
}

export interface ModelSessions {
  textEncoder: ort.InferenceSession;
  textEncoder2?: ort.InferenceSession;
  unet: ort.InferenceSession;
  vaeDecoder: ort.InferenceSession;
  vaeEncoder?: ort.InferenceSession;
  /** The tiny autoencoder, when the folder has it (previews, and deployments that choose it). */
  tinyDecoder?: ort.InferenceSession;
  tinyEncoder?: ort.InferenceSession;
}

export interface LoadedModel {
  folder: ModelFolder;
  family: ModelFamily;
  sessions: ModelSessions;
  contracts: {
    textEncoder: TextEncoderContract;
    textEncoder2?: TextEncoderContract;
    unet: UnetContract;
    vaeDecoder: VaeDecoderContract;
    vaeEncoder?: VaeEncoderContract;
    tinyDecoder?: VaeDecoderContract;
    tinyEncoder?: VaeEncoderContract;
  };
  tokenizer: ClipTokenizer;
  tokenizer2?: ClipTokenizer;
  schedulerConfig: SchedulerConfig;
  vaeScaleFactor: number;
  /** Multiplies VAE latents into the UNet's latent space (and divides them before decoding). */
  vaeScalingFactor: number;
  /** The same for the tiny autoencoder (1.0 for TAESD). */
  tinyScalingFactor: number;
  latentChannels: 4;
  nativeResolution: number;
  /** A 9-channel UNet (latents ‖ mask ‖ masked-image latents; docs/diffusion.md, "Inpainting and image-to-image"). */
  inpainting: boolean;
  /**
   * The UNet's attention blocks opened as fused MultiHeadAttention (attention-rewrite.ts), and the
   * attention-like Softmax nodes left as they were, with why; null when the rewrite was off or not tried.
   */
  attentionRewrite: { fused: number; skipped: Array<{ node: string; reason: string }>; reason?: string } | null;
  /** Releases every session. */
  release(): Promise<void>;
}

export interface LoadModelOptions {
  executionProviders?: string[];
  /** Threads of each session's intra-op pool; unset = onnxruntime's own default (see src/runtime/onnx-threads.ts). */
  intraOpNumThreads?: number;
  /** Further session options (benchmarks compare arena, execution mode, …); they override the defaults below. */
  tuning?: ort.InferenceSession.SessionOptions;
  /**
   * Open the UNet with its unfused attention rewritten to MultiHeadAttention (attention-rewrite.ts,
   * docs/cpu-performance.md, "Fused attention"). Default true; applies to the CPU provider only.
   */
  fuseAttention?: boolean;
}

/**
 * The session options every part is opened with. The parts of a pipeline run one after another
 * and each graph is a chain of large kernels, so onnxruntime's sequential executor with one
 * inter-op thread is the right mode: the intra-op pool parallelises inside each kernel, and a
 * parallel executor would only add a second pool competing for the same cores (measured in
 * `npm run bench -- --factors`). Full graph optimisation (constant folding, fusions of attention,
 * GELU, LayerNorm and Conv+activation) is onnxruntime's default; said here so it stays so.
 */
export function sessionOptionsFor(options: LoadModelOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: options.executionProviders ?? ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // onnxruntime's CPU arena keeps every buffer it ever grew to; without it the SD-Turbo
    // architecture ran 11 % faster and peaked ~750 MB lower (interleaved A/B, docs/cpu-performance.md).
    enableCpuMemArena: false,
    ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    ...options.tuning,
  };
}

export async function loadModel(
  folderOrPath: string | ModelFolder,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const folder = typeof folderOrPath === 'string' ? await inspectModelFolder(folderOrPath) : folderOrPath;
  const rel = (p: string) => relative(folder.path, p);
  const sessionOptions = sessionOptionsFor(options);
  const { parts } = folder;
  const named = Object.entries({
    textEncoder: parts.textEncoder,
    textEncoder2: parts.textEncoder2,
    unet: parts.unet,
    vaeDecoder: parts.vaeDecoder,
    vaeEncoder: parts.vaeEncoder,
    tinyDecoder: parts.tinyDecoder,
    tinyEncoder: parts.tinyEncoder,
  }).filter((e): e is [string, string] => e[1] !== undefined);
  // By path, so external weights (model.onnx_data, weights.pb) next to the model are found (docs/diffusion.md,
  // "onnxruntime-node").
  const cpuOnly = (sessionOptions.executionProviders ?? ['cpu']).every(
    (p) => (typeof p === 'string' ? p : p.name) === 'cpu',
  );
  let attentionRewrite: LoadedModel['attentionRewrite'] = null;
  const open = async (key: string, path: string) => {
    if (key === 'unet' && cpuOnly && options.fuseAttention !== false) {
      // A file the rewrite cannot read is opened as it is: onnxruntime's own message then names the problem.
      const { model, ...outcome } = await rewriteModelFile(path).catch((error: unknown) => ({
        model: null,
        fused: 0,
        skipped: [],
        reason: firstLine(error),
      }));
      attentionRewrite = outcome;
      // From memory, so external weights are looked up in the model's own folder, as they would be by path.
      // Should onnxruntime refuse the rewritten graph, the UNet is opened as exported and the log says why.
      if (model) {
        try {
          return await ort.InferenceSession.create(model, withExternalDataFolder(sessionOptions, dirname(path)));
        } catch (error) {
          attentionRewrite = {
            fused: 0,
            skipped: outcome.skipped,
            reason: `onnxruntime refused the rewritten graph: ${firstLine(error)}`,
          };
        }
      }
    }
    return ort.InferenceSession.create(path, sessionOptions);
  };
  const settled = await Promise.allSettled(named.map(([key, path]) => open(key, path)));
  const opened: Record<string, ort.InferenceSession> = {};
  const problems: string[] = [];
  settled.forEach((result, i) => {
    const [key, path] = named[i]!;
    if (result.status === 'fulfilled') opened[key] = result.value;
    else problems.push(`${rel(path)} could not be loaded: ${firstLine(result.reason)}`);
  });
  const releaseAll = () => Promise.all(Object.values(opened).map((s) => s.release())).then(() => undefined);
  try {
    if (problems.length > 0) throw new ModelFolderError(folder.path, problems);
    const sessions = opened as unknown as ModelSessions;
    const contracts = {
      textEncoder: textEncoderContract(sessions.textEncoder, 'text_encoder/model.onnx', problems),
      textEncoder2:
        sessions.textEncoder2 && textEncoderContract(sessions.textEncoder2, 'text_encoder_2/model.onnx', problems),
      unet: unetContract(sessions.unet, folder.family, problems),
      vaeDecoder: vaeDecoderContract(sessions.vaeDecoder, problems),
      vaeEncoder: sessions.vaeEncoder && vaeEncoderContract(sessions.vaeEncoder, problems),
      tinyDecoder: sessions.tinyDecoder && vaeDecoderContract(sessions.tinyDecoder, problems, TINY_DECODER_FILE),
      tinyEncoder: sessions.tinyEncoder && vaeEncoderContract(sessions.tinyEncoder, problems, TINY_ENCODER_FILE),
    };
    if (problems.length > 0) throw new ModelFolderError(folder.path, problems);
    const { unet } = contracts;
    // Symbolic channels (real exporters name them) fall back to the folder's own evidence.
    const inpainting = unet!.sampleChannels === 9 || (unet!.sampleChannels === null && folder.inpainting);
    const [tokenizer, tokenizer2] = await Promise.all([
      tokenizerOf(folder.path, parts.tokenizer),
      parts.tokenizer2 && tokenizerOf(folder.path, parts.tokenizer2),
    ]);
    return {
      folder,
      family: folder.family,
      sessions,
      contracts: contracts as LoadedModel['contracts'],
      tokenizer,
      ...(tokenizer2 ? { tokenizer2 } : {}),
      schedulerConfig: folder.schedulerConfig,
      vaeScaleFactor: folder.vaeScaleFactor,
      vaeScalingFactor: folder.vaeScalingFactor,
      tinyScalingFactor: folder.tinyScalingFactor,
      latentChannels: 4,
      nativeResolution: folder.nativeResolution,
      inpainting,
      attentionRewrite,
      release: releaseAll,
    };
  } catch (error) {
    await releaseAll();
    throw error;
  }
}

/** Tokenizer problems surface as folder problems too, so callers catch one error type. */
async function tokenizerOf(folderPath: string, path: string): Promise<ClipTokenizer> {
  try {
    return await loadClipTokenizer(path);
  } catch (error) {
    throw new ModelFolderError(folderPath, [firstLine(error)], { cause: error });
  }
}

function firstLine(reason: unknown): string {
  return String(reason instanceof Error ? reason.message : reason).split('\n')[0]!;
}

/** Each check pushes `<part> <tensor> …` problems and returns undefined, so all problems are collected. */
class Reader {
  constructor(
    readonly part: string,
    readonly session: ort.InferenceSession,
    readonly problems: string[],
  ) {}
  fail(message: string): undefined {
    this.problems.push(`${this.part}: ${message}`);
    return undefined;
  }
  private info(
    list: readonly ort.InferenceSession.ValueMetadata[],
    kind: string,
    name: string,
    required: boolean,
  ): TensorInfo | undefined {
    const meta = list.find((m) => m.name === name);
    if (!meta)
      return required
        ? this.fail(`has no ${kind} '${name}' (${kind}s: ${list.map((m) => m.name).join(', ') || 'none'})`)
        : undefined;
    if (!meta.isTensor) return this.fail(`${kind} '${name}' is not a tensor`);
    return { name, type: meta.type, shape: meta.shape };
  }
  input(name: string, required = true) {
    return this.info(this.session.inputMetadata, 'input', name, required);
  }
  output(name: string, required = true) {
    return this.info(this.session.outputMetadata, 'output', name, required);
  }
  /** The single output when the expected name is absent (some exports rename it). */
  outputOrOnly(name: string): TensorInfo | undefined {
    const outputs = this.session.outputMetadata;
    const found = this.output(name, outputs.length !== 1);
    return found ?? (outputs.length === 1 ? this.output(outputs[0]!.name) : undefined);
  }
  float(t: TensorInfo | undefined): FloatType | undefined {
    if (!t) return undefined;
    if (t.type === 'float32' || t.type === 'float16') return t.type;
    return this.fail(`'${t.name}' has type ${t.type}, expected float32 or float16`);
  }
  rank(t: TensorInfo | undefined, ...ranks: number[]): boolean {
    if (!t) return false;
    if (ranks.includes(t.shape.length)) return true;
    this.fail(`'${t.name}' has rank ${t.shape.length} (shape [${t.shape.join(', ')}]), expected ${ranks.join(' or ')}`);
    return false;
  }
}

const fixed = (d: Dim | undefined): number | null => (typeof d === 'number' && d > 0 ? d : null);
const last = (t: TensorInfo | undefined) => fixed(t?.shape[t.shape.length - 1]);

function textEncoderContract(
  session: ort.InferenceSession,
  part: string,
  problems: string[],
): TextEncoderContract | undefined {
  const r = new Reader(part, session, problems);
  const ids = r.input('input_ids');
  const idsType =
    ids &&
    (ids.type === 'int32' || ids.type === 'int64'
      ? ids.type
      : r.fail(`'input_ids' has type ${ids.type}, expected int32 or int64`));
  r.rank(ids, 2);
  const hidden = r.output('last_hidden_state');
  const outputType = r.float(hidden);
  r.rank(hidden, 3);
  const names = session.outputNames;
  const pooled = names.includes('text_embeds')
    ? 'text_embeds'
    : names.includes('pooler_output')
      ? 'pooler_output'
      : null;
  const hiddenStates = names
    .filter((n) => /^hidden_states\.\d+$/.test(n))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  if (!ids || !idsType || !hidden || !outputType) return undefined;
  return {
    idsName: 'input_ids',
    idsType,
    sequenceLength: fixed(ids.shape[1]),
    lastHiddenState: hidden.name,
    pooled,
    hiddenStates,
    outputType,
    hiddenSize: last(hidden),
  };
}

function unetContract(
  session: ort.InferenceSession,
  family: ModelFamily,
  problems: string[],
): UnetContract | undefined {
  const r = new Reader('unet/model.onnx', session, problems);
  const sample = r.input('sample');
  const sampleType = r.float(sample);
  let sampleChannels: 4 | 9 | null = null;
  if (r.rank(sample, 4)) {
    const c = sample!.shape[1];
    if (typeof c === 'number' && c !== 4 && c !== 9) r.fail(`'sample' has ${c} channels, expected 4 or 9 (inpainting)`);
    else if (c === 4 || c === 9) sampleChannels = c;
  }
  const t = r.input('timestep');
  let timestep: TimestepShape | undefined;
  if (t) {
    const type =
      t.type === 'float32' || t.type === 'float16' || t.type === 'int64'
        ? t.type
        : r.fail(`'timestep' has type ${t.type}, expected float32, float16 or int64`);
    if (r.rank(t, 0, 1) && type) {
      const d = t.shape[0];
      const length =
        t.shape.length === 0 ? 'one' : typeof d === 'number' ? d : d === sample?.shape[0] ? 'batch' : 'one';
      timestep = { type, rank: t.shape.length as 0 | 1, length };
    }
  }
  const context = r.input('encoder_hidden_states');
  const encoderHiddenStatesType = r.float(context);
  r.rank(context, 3);
  const extra = (name: string, required: boolean): ExtraInput | null => {
    const info = r.input(name, required);
    const type = r.float(info);
    return info && type ? { name, type, size: last(info) } : null;
  };
  // SDXL's UNet cannot run without its added conditioning (docs/diffusion.md, "SDXL conditioning"); other families
  // never have it.
  const textEmbeds = extra('text_embeds', family === 'sdxl');
  const timeIds = extra('time_ids', family === 'sdxl');
  const timestepCond = extra('timestep_cond', false);
  const out = r.outputOrOnly('out_sample');
  const outputType = r.float(out);
  if (!sample || !sampleType || !timestep || !context || !encoderHiddenStatesType || !out || !outputType)
    return undefined;
  return {
    sampleType,
    sampleChannels,
    timestep,
    encoderHiddenStatesType,
    crossAttentionDim: last(context),
    textEmbeds,
    timeIds,
    timestepCond,
    output: out.name,
    outputType,
  };
}

function vaeDecoderContract(
  session: ort.InferenceSession,
  problems: string[],
  part = 'vae_decoder/model.onnx',
): VaeDecoderContract | undefined {
  const r = new Reader(part, session, problems);
  const input = r.input('latent_sample');
  const inputType = r.float(input);
  if (r.rank(input, 4) && typeof input!.shape[1] === 'number' && input!.shape[1] !== 4)
    r.fail(`'latent_sample' has ${input!.shape[1]} channels, expected 4`);
  const out = r.outputOrOnly('sample');
  const outputType = r.float(out);
  if (r.rank(out, 4) && typeof out!.shape[1] === 'number' && out!.shape[1] !== 3)
    r.fail(`'${out!.name}' has ${out!.shape[1]} channels, expected 3 (RGB)`);
  if (!input || !inputType || !out || !outputType) return undefined;
  return { input: input.name, inputType, output: out.name, outputType };
}

function vaeEncoderContract(
  session: ort.InferenceSession,
  problems: string[],
  part = 'vae_encoder/model.onnx',
): VaeEncoderContract | undefined {
  const r = new Reader(part, session, problems);
  const input = r.input('sample');
  const inputType = r.float(input);
  r.rank(input, 4);
  const names = session.outputNames;
  const outputKind = names.includes('latent_parameters')
    ? 'latent_parameters'
    : names.includes('latent_sample')
      ? 'latent_sample'
      : undefined;
  if (!outputKind) r.fail(`has neither 'latent_sample' nor 'latent_parameters' output (outputs: ${names.join(', ')})`);
  const out = outputKind ? r.output(outputKind) : undefined;
  const outputType = r.float(out);
  const want = outputKind === 'latent_parameters' ? 8 : 4;
  if (r.rank(out, 4) && typeof out!.shape[1] === 'number' && out!.shape[1] !== want)
    r.fail(`'${out!.name}' has ${out!.shape[1]} channels, expected ${want}`);
  if (!input || !inputType || !out || !outputType || !outputKind) return undefined;
  return { input: input.name, inputType, output: out.name, outputKind, outputType };
}
