// The UNet alone: one 512² denoising step of a preset's UNet (latents 64², 77 text tokens), as an
// A/B of graph variants in one process and, with --profile, onnxruntime's own per-node profile
// summed by operator and by resolution (docs/cpu-performance.md, "Where a UNet step goes").
//
//   npx tsx bench/diffusion/unet-profile.ts --preset sd-turbo|sd15|sdxl-turbo [--variants unfused,rewritten] [--reps 2]
//       [--profile] [--threads N]
//
// Variants: `unfused` is the UNet as exporters write it (MatMul/Softmax/MatMul attention); `fused`
// is the model builder's com.microsoft MultiHeadAttention graph; `rewritten` is the unfused graph
// after easel's load-time attention rewrite (src/engines/diffusion/model/attention-rewrite.ts);
// `int8` is `fused` with the transformer blocks' linear layers as int8 DynamicQuantizeMatMul. Every
// variant has the same weights (int8: rounded), so their outputs are compared with the first
// variant's (relative L2 and max abs difference). Each variant's UNet is written once under
// .cache/bench-models/. Sessions get the engine's options and thread plan (all cores).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import ort from 'onnxruntime-node';

import {
  rewriteModelFile,
  sessionOptionsFor,
  withExternalDataFolder,
} from '../../src/engines/diffusion/model/index.ts';
import { planOnnxThreads } from '../../src/runtime/onnx-threads.ts';
import { type ArchitecturePreset, writeArchitecturePart } from '../../tools/model-builder/architectures.ts';
import { WeightStream } from '../../tools/model-builder/layers.ts';
import { load1m, median, round } from './common.ts';

const VARIANTS = ['unfused', 'fused', 'rewritten', 'int8'] as const;
type Variant = (typeof VARIANTS)[number];

const ROOT = fileURLToPath(new URL('../../.cache/bench-models/', import.meta.url));
const CROSS_ATTENTION_DIM: Partial<Record<ArchitecturePreset, number>> = {
  'sd-turbo': 1024,
  sd15: 768,
  small: 64,
  'sdxl-turbo': 2048,
};
/** SDXL's added conditioning: the pooled text embedding's width (`text_embeds`); `time_ids` has six numbers. */
const TEXT_EMBEDS_DIM: Partial<Record<ArchitecturePreset, number>> = { 'sdxl-turbo': 1280 };

function unetPath(preset: ArchitecturePreset, variant: Variant): string {
  const folder = join(ROOT, `unet-${preset}-${variant === 'rewritten' ? 'unfused' : variant}-0`);
  const path = join(folder, 'unet', 'model.onnx');
  if (!existsSync(join(folder, '.complete'))) {
    rmSync(folder, { recursive: true, force: true });
    const started = performance.now();
    // int8: fused attention too, so that it compares with `fused` / `rewritten`.
    writeArchitecturePart(folder, preset, 'unet', {
      seed: 0,
      fusedAttention: variant === 'fused' || variant === 'int8',
      int8TransformerLinear: variant === 'int8',
    });
    writeFileSync(join(folder, '.complete'), ''); // a write cut short leaves no marker and is redone
    console.error(`${variant}: UNet written in ${round((performance.now() - started) / 1000)} s`);
  }
  return path;
}

function inputs(preset: ArchitecturePreset): Record<string, ort.Tensor> {
  const stream = new WeightStream(1, 0);
  const contextDim = CROSS_ATTENTION_DIM[preset]!;
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', stream.next(4 * 64 * 64, 1), [1, 4, 64, 64]),
    timestep: new ort.Tensor('float32', Float32Array.of(999), [1]),
    encoder_hidden_states: new ort.Tensor('float32', stream.next(77 * contextDim, 1), [1, 77, contextDim]),
  };
  const textEmbedsDim = TEXT_EMBEDS_DIM[preset];
  if (textEmbedsDim !== undefined) {
    feeds.text_embeds = new ort.Tensor('float32', stream.next(textEmbedsDim, 1), [1, textEmbedsDim]);
    // Original size, crop offset, target size, as SDXL pipelines pass them for a 512² image.
    feeds.time_ids = new ort.Tensor('float32', Float32Array.of(512, 512, 0, 0, 512, 512), [1, 6]);
  }
  return feeds;
}

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: {
    op_name?: string;
    input_type_shape?: Array<Record<string, number[]>>;
    output_type_shape?: Array<Record<string, number[]>>;
  };
}

/** Tokens (or pixels) of the resolution a node works at: 4096 for 64² latents, …; 0 when none fits. */
function resolution(event: ProfileEvent): number {
  const levels = [4096, 1024, 256, 64];
  let best = 0;
  for (const shapes of [event.args?.input_type_shape ?? [], event.args?.output_type_shape ?? []]) {
    for (const entry of shapes) {
      for (const dims of Object.values(entry)) {
        const candidates = [
          dims.length >= 4 ? dims[2]! * dims[3]! : 0,
          dims.length === 3 ? dims[1]! : 0,
          dims.length === 4 ? dims[2]! : 0,
        ];
        for (const c of candidates) if (levels.includes(c) && c > best) best = c;
      }
    }
  }
  return best;
}

/** The 4096-token attention core: score MatMuls ([…, 4096, 4096] in or out), Softmax, fused attention. */
function attentionCore(event: ProfileEvent): boolean {
  const op = event.args?.op_name ?? '';
  if (op === 'MultiHeadAttention' || op === 'Attention') return true;
  const shapes = [...(event.args?.input_type_shape ?? []), ...(event.args?.output_type_shape ?? [])].flatMap((e) =>
    Object.values(e),
  );
  return shapes.some((d) => d.length === 4 && d[2] === d[3] && d[2]! >= 64 && d[1]! <= 40);
}

function summarise(file: string): object {
  const events = JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const last = runs.at(-1)!;
  const nodes = events.filter(
    (e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= last.ts && e.ts <= last.ts + last.dur,
  );
  const total = nodes.reduce((s, e) => s + e.dur, 0);
  const byOp = new Map<string, { ms: number; count: number }>();
  const byLevel = new Map<string, number>();
  for (const e of nodes) {
    const op = e.args?.op_name ?? '?';
    const entry = byOp.get(op) ?? { ms: 0, count: 0 };
    entry.ms += e.dur / 1000;
    entry.count++;
    byOp.set(op, entry);
    const level = `${resolution(e) || 'other'}${attentionCore(e) ? ' attention core' : ''}`;
    byLevel.set(level, (byLevel.get(level) ?? 0) + e.dur / 1000);
  }
  const pct = (ms: number) => round((100 * ms * 1000) / total);
  return {
    runMs: round(last.dur / 1000),
    nodeMs: round(total / 1000),
    byOp: [...byOp]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([op, { ms, count }]) => ({ op, count, ms: round(ms), pct: pct(ms) })),
    byLevel: [...byLevel].sort((a, b) => b[1] - a[1]).map(([level, ms]) => ({ level, ms: round(ms), pct: pct(ms) })),
  };
}

function compare(a: Float32Array, b: Float32Array) {
  let diff = 0;
  let norm = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    diff += d * d;
    norm += a[i]! * a[i]!;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { relL2: Number(Math.sqrt(diff / norm).toPrecision(3)), maxAbs: Number(maxAbs.toPrecision(3)) };
}

async function main() {
  const { values } = parseArgs({
    options: {
      preset: { type: 'string', default: 'sd-turbo' },
      variants: { type: 'string', default: 'unfused,fused' },
      reps: { type: 'string', default: '2' },
      profile: { type: 'boolean', default: false },
      threads: { type: 'string' },
    },
  });
  const preset = values.preset as ArchitecturePreset;
  const variants = values.variants.split(',') as Variant[];
  for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}`);
  const reps = Number(values.reps);
  const threads = values.threads
    ? Number(values.threads)
    : planOnnxThreads({ configured: 0, diffusionModels: 1, concurrency: 1 }).diffusion;
  const profileDir = join(ROOT, 'profiles');
  mkdirSync(profileDir, { recursive: true });
  const feeds = inputs(preset);
  const sessions: Array<{ variant: Variant; session: ort.InferenceSession; prefix: string; loadS: number }> = [];
  for (const variant of variants) {
    const path = unetPath(preset, variant);
    const prefix = join(profileDir, `${preset}-${variant}-${process.pid}`);
    const started = performance.now();
    // The engine's thread plan for one model (all cores), unless --threads says otherwise.
    const options = {
      ...sessionOptionsFor({ intraOpNumThreads: threads }),
      ...(values.profile ? { enableProfiling: true, profileFilePrefix: prefix } : {}),
    };
    let session: ort.InferenceSession;
    if (variant === 'rewritten') {
      const rewrite = await rewriteModelFile(path);
      if (!rewrite.model) throw new Error(`the rewrite fused nothing: ${JSON.stringify(rewrite.skipped.slice(0, 3))}`);
      console.error(`rewritten: ${rewrite.fused} attention blocks fused, ${rewrite.skipped.length} left`);
      session = await ort.InferenceSession.create(rewrite.model, withExternalDataFolder(options, dirname(path)));
    } else {
      session = await ort.InferenceSession.create(path, options);
    }
    sessions.push({ variant, session, prefix, loadS: round((performance.now() - started) / 1000) });
  }
  const outputs = new Map<Variant, Float32Array>();
  const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  for (let rep = -1; rep < reps; rep++) {
    for (const { variant, session } of sessions) {
      const started = performance.now();
      const result = await session.run(feeds);
      const ms = performance.now() - started;
      if (rep < 0) outputs.set(variant, result.out_sample!.data as Float32Array);
      else times.get(variant)!.push(round(ms));
    }
  }
  const reference = outputs.get(variants[0]!)!;
  for (const { variant, session, prefix, loadS } of sessions) {
    const line: Record<string, unknown> = {
      bench: 'unet-step',
      preset,
      variant,
      threads,
      loadS,
      stepMs: times.get(variant),
      medianMs: round(median(times.get(variant)!)),
      vsFirst: compare(reference, outputs.get(variant)!),
      load_1m: load1m(),
    };
    if (values.profile) {
      session.endProfiling();
      const name = readdirSync(profileDir)
        .filter((f) => join(profileDir, f).startsWith(prefix))
        .sort()
        .at(-1)!;
      line.profileFile = join(profileDir, name);
      line.profile = summarise(join(profileDir, name));
    }
    console.log(JSON.stringify(line));
    await session.release();
  }
}

await main();
