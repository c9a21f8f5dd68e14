// `--factors`: what else moves text-encoder, UNet and VAE time on this CPU. Each factor is one
// model load with different session options (or weights) in a process of its own, one warm-up
// and the repetitions of a one-step 512² image, all cores; the reference configuration (the
// engine's defaults) runs first and last, and each factor is compared with the mean of the two.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import ort from 'onnxruntime-node';

import { sessionOptionsFor } from '../../src/engines/diffusion/model/index.ts';
import { planOnnxThreads } from '../../src/runtime/onnx-threads.ts';
import type { ChildResult } from './child.ts';
import { cachedModel, load1m, median, type Preset, round, type Run, sum } from './common.ts';
import { runChild } from './run-child.ts';

interface Factor {
  name: string;
  tuning?: ort.InferenceSession.SessionOptions;
  fp16?: boolean;
}

const FACTORS: Factor[] = [
  { name: "arena on (enableCpuMemArena: true, onnxruntime's default)", tuning: { enableCpuMemArena: true } },
  { name: 'memory pattern off (enableMemPattern: false)', tuning: { enableMemPattern: false } },
  {
    name: 'parallel executor (executionMode: parallel, 2 inter-op threads)',
    tuning: { executionMode: 'parallel', interOpNumThreads: 2 },
  },
  { name: 'graph optimisation extended (no NCHWc layout transforms)', tuning: { graphOptimizationLevel: 'extended' } },
  { name: 'graph optimisation basic', tuning: { graphOptimizationLevel: 'basic' } },
  { name: 'intra-op spinning off', tuning: { extra: { session: { intra_op: { allow_spinning: '0' } } } } },
  {
    name: 'free dimensions fixed (batch 1, 64² latents, 77 tokens)',
    tuning: {
      freeDimensionOverrides: {
        batch_size: 1,
        sequence_length: 77,
        height: 64,
        width: 64,
        height_latent: 64,
        width_latent: 64,
      },
    },
  },
  { name: 'fp16 weights and I/O', fp16: true },
];

function stages(result: ChildResult) {
  const { runs, peakRssMb } = result.variants.full!;
  const m = (pick: (run: Run) => number) => median(runs.map(pick));
  return {
    s_per_image: round(m((r) => r.wallMs) / 1000, 3),
    text_encoder_ms: round(m((r) => r.textEncoderMs)),
    unet_step_ms: round(m((r) => sum(r.unetMs) / r.unetMs.length)),
    vae_decode_ms: round(m((r) => sum(r.vaeDecodeMs))),
    model_load_s: round(result.loadSeconds, 2),
    peak_rss_mb: peakRssMb,
  };
}

export async function measureFactors(
  folder: string,
  preset: Preset,
  reps: number,
  print: (figures: object) => void,
): Promise<void> {
  const { diffusion: threads } = planOnnxThreads({
    configured: Number(process.env.EASEL_ONNX_THREADS ?? 0) || 0,
    diffusionModels: 1,
    concurrency: 1,
  });
  const job = { steps: 1, reps, threads, variants: ['full' as const] };
  const first = stages(await runChild({ ...job, folder }));
  print({ case: 'factor', factor: 'reference: engine defaults (first)', threads, ...first, load_1m: load1m() });
  const measured: Array<{ factor: Factor; figures: ReturnType<typeof stages>; load: number }> = [];
  for (const factor of FACTORS) {
    try {
      const factorFolder = factor.fp16 ? await cachedModel(preset, print, { fp16: true }) : folder;
      const figures = stages(
        await runChild({ ...job, folder: factorFolder, ...(factor.tuning ? { tuning: factor.tuning } : {}) }),
      );
      measured.push({ factor, figures, load: load1m() });
    } catch (error) {
      print({ case: 'factor', factor: factor.name, skipped: true, reason: (error as Error).message.split('\n')[0] });
    }
  }
  const last = stages(await runChild({ ...job, folder }));
  print({ case: 'factor', factor: 'reference: engine defaults (last)', threads, ...last, load_1m: load1m() });
  const reference = (key: 'unet_step_ms' | 'vae_decode_ms' | 'text_encoder_ms' | 's_per_image') =>
    (first[key] + last[key]) / 2;
  for (const { factor, figures, load } of measured) {
    print({
      case: 'factor',
      factor: factor.name,
      threads,
      ...figures,
      // < 1: faster than the engine's defaults.
      unet_ratio: round(figures.unet_step_ms / reference('unet_step_ms'), 2),
      vae_ratio: round(figures.vae_decode_ms / reference('vae_decode_ms'), 2),
      text_encoder_ratio: round(figures.text_encoder_ms / reference('text_encoder_ms'), 2),
      rss_vs_reference_mb: figures.peak_rss_mb - Math.round((first.peak_rss_mb + last.peak_rss_mb) / 2),
      load_1m: load,
    });
  }
  print({
    case: 'factor',
    factor: 'int8 dynamic quantisation of the text encoder',
    skipped: true,
    reason:
      'no quantiser on npm (onnxruntime quantize_dynamic is Python-only); the model builder would have to emit DynamicQuantizeLinear + MatMulInteger graphs',
    text_encoder_share_of_image: round(reference('text_encoder_ms') / 1000 / reference('s_per_image'), 3),
  });
  await optimizedModelLoad(folder, threads, print);
}

/** Model load from the original UNet against one saved after onnxruntime optimised it (optimizedModelFilePath). */
export async function optimizedModelLoad(
  folder: string,
  threads: number,
  print: (figures: object) => void,
): Promise<void> {
  const unet = join(folder, 'unet', 'model.onnx');
  const dir = await mkdtemp(join(folder, '..', '.optimized-'));
  const saved = join(dir, 'model.onnx');
  const options = sessionOptionsFor({ intraOpNumThreads: threads });
  const timeCreate = async (path: string, sessionOptions: ort.InferenceSession.SessionOptions) => {
    const started = performance.now();
    const session = await ort.InferenceSession.create(path, sessionOptions);
    const seconds = (performance.now() - started) / 1000;
    await session.release();
    return round(seconds, 2);
  };
  try {
    const plain = await timeCreate(unet, options);
    const saving = await timeCreate(unet, {
      ...options,
      optimizedModelFilePath: saved,
      // Weights over 2 GB cannot be inlined in one protobuf: they go to a file beside it.
      extra: {
        session: {
          optimized_model_external_initializers_file_name: 'model.onnx_data',
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    });
    const fromSaved = existsSync(saved)
      ? await timeCreate(saved, { ...options, graphOptimizationLevel: 'disabled' })
      : null;
    const plainAgain = await timeCreate(unet, options);
    print({
      case: 'factor',
      factor: 'optimised UNet graph saved (optimizedModelFilePath), load time',
      unet_load_s: round((plain + plainAgain) / 2, 2),
      unet_load_while_saving_s: saving,
      unet_load_from_saved_s: fromSaved,
      saved_gb: existsSync(saved)
        ? round(
            ((await stat(saved)).size + (await stat(join(dir, 'model.onnx_data')).catch(() => ({ size: 0 }))).size) /
              1e9,
            2,
          )
        : null,
      load_1m: load1m(),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
