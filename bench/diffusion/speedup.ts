// The CPU speedup figures: one image at 512², batch 1, the preset's steps, in three configurations:
//   (a) baseline     — onnxruntime's own thread default and CPU arena, the UNet's attention as exported (what
//                      easel used before);
//   (b) all cores    — the engine's own settings (src/runtime/onnx-threads.ts for one model, arena off, the
//                      UNet's attention fused at load: docs/cpu-performance.md);
//   (c) tiny decoder — (b) with the tiny autoencoder (TAESD) decoding instead of the full VAE, as a
//                      deployment with `diffusion.autoencoder: "tiny"` runs it.
// (a) runs in one process; (b) and (c) share one model load in another, (c) warmed up first so
// that each one's peak RSS is its own, then their repetitions alternate.
import { planOnnxThreads } from '../../src/runtime/onnx-threads.ts';
import type { VariantResult } from './child.ts';
import { load1m, median, type ModelPreset, round, type Run, sum } from './common.ts';
import { runChild } from './run-child.ts';

/** Steps of each preset's speedup case: one for the Turbo models, four for an LCM-style SD 1.5 run. */
export const SPEEDUP_STEPS: Record<ModelPreset, number> = {
  small: 1,
  'sd-turbo': 1,
  sd15: 4,
  'sdxl-turbo': 1,
  'sdxl-small': 1,
};

function caseFigures(label: string, threads: number | 'onnxruntime default', result: VariantResult) {
  const m = (pick: (run: Run) => number) => median(result.runs.map(pick));
  return {
    case: `cpu speedup: ${label}`,
    size: '512x512',
    batch: 1,
    threads,
    s_per_image: round(m((r) => r.wallMs) / 1000, 3),
    s_per_image_min: round(Math.min(...result.runs.map((r) => r.wallMs)) / 1000, 3),
    text_encoder_ms: round(m((r) => r.textEncoderMs)),
    unet_step_ms_mean: round(m((r) => sum(r.unetMs) / r.unetMs.length)),
    vae_decode_ms: round(m((r) => sum(r.vaeDecodeMs))),
    png_ms: round(m((r) => sum(r.pngMs))),
    peak_rss_mb: result.peakRssMb,
    reps: result.runs.length,
  };
}

export async function cpuSpeedup(
  folder: string,
  preset: ModelPreset,
  reps: number,
  print: (figures: object) => void,
): Promise<void> {
  const steps = SPEEDUP_STEPS[preset];
  const configured = Number(process.env.EASEL_ONNX_THREADS ?? 0) || 0;
  const { diffusion: threads, reason } = planOnnxThreads({ configured, diffusionModels: 1, concurrency: 1 });
  const loadA = load1m();
  // Before: onnxruntime's default threads and its CPU arena (the engine now turns the arena off), the graph as given.
  const a = await runChild({
    folder,
    steps,
    reps,
    threads: null,
    tuning: { enableCpuMemArena: true },
    fuseAttention: false,
    variants: ['full'],
  });
  const loadBC = load1m();
  const bc = await runChild({ folder, steps, reps, threads, variants: ['tiny', 'full'] });
  const figures = {
    a: caseFigures('(a) baseline, onnxruntime default threads and arena', 'onnxruntime default', a.variants.full!),
    b: caseFigures('(b) all cores', threads, bc.variants.full!),
    c: caseFigures('(c) all cores + tiny decoder', threads, bc.variants.tiny!),
  };
  print({ ...figures.a, steps, model_load_s: round(a.loadSeconds, 2), load_1m: loadA });
  print({ ...figures.b, steps, threads_reason: reason, model_load_s: round(bc.loadSeconds, 2), load_1m: loadBC });
  print({ ...figures.c, steps, load_1m: load1m() });
  const ratio = (x: number, y: number) => round(x / y, 2);
  print({
    case: 'cpu speedup ratios',
    steps,
    a_over_b: ratio(figures.a.s_per_image, figures.b.s_per_image),
    a_over_c: ratio(figures.a.s_per_image, figures.c.s_per_image),
    b_over_c: ratio(figures.b.s_per_image, figures.c.s_per_image),
    // From each case's fastest run: the least disturbed by other work on a shared machine.
    a_over_b_min: ratio(figures.a.s_per_image_min, figures.b.s_per_image_min),
    a_over_c_min: ratio(figures.a.s_per_image_min, figures.c.s_per_image_min),
  });
  console.log(
    JSON.stringify({
      bench: 'diffusion',
      case: 'cpu speedup',
      preset,
      steps,
      baseline_s_per_image: figures.a.s_per_image,
      all_cores_s_per_image: figures.b.s_per_image,
      tiny_decoder_s_per_image: figures.c.s_per_image,
      speedup: ratio(figures.a.s_per_image, figures.c.s_per_image),
    }),
  );
}
