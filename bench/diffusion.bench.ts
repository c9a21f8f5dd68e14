// Figures of the diffusion engine on a random-weight model with a real architecture (same compute
// as the published model, meaningless pixels), in sections:
//   speedup — 512², batch 1: (a) onnxruntime's default threads, (b) all cores, (c) all cores with
//             the tiny decoder, and their ratios (bench/diffusion/speedup.ts);
//   configs — text-to-image at 512×512 without guidance (the Turbo setting), steps × batch, with
//             the engine's own thread settings; the time outside onnxruntime; batching;
//   healthz — /healthz latency on a real server while it generates, the proof that model runs
//             stay off the event loop;
//   sdxl    — the speedup cases on SDXL-Turbo's architecture beside sd-turbo (sdxl-small beside small), when the
//             machine has the memory (bench/diffusion/sdxl.ts);
//   factors — (only with --factors) session options and weights that might move UNet/VAE time.
// Run: npx tsx bench/diffusion.bench.ts [--preset small|sd-turbo|sd15] [--sections speedup,sdxl,configs,healthz]
// [--factors]
// → one JSON line per figure. The model folder is written once under .cache/bench-models/.
import { basename, dirname } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { loadModel } from '../src/engines/diffusion/model/index.ts';
import { planOnnxThreads } from '../src/runtime/onnx-threads.ts';
import { startTestApp, TEST_KEY } from '../test/helpers/app.ts';
import {
  cachedModel,
  generate,
  load1m,
  median,
  peakRssMb,
  type Preset,
  PRESETS,
  printer,
  PROMPT,
  quantile,
  round,
  type Run,
  SIZE,
  sum,
} from './diffusion/common.ts';
import { measureFactors } from './diffusion/factors.ts';
import { sdxlSpeedup } from './diffusion/sdxl.ts';
import { cpuSpeedup } from './diffusion/speedup.ts';

interface Plan {
  /** Measured repetitions per configuration, after one warm-up run. */
  reps: number;
  /** Measured repetitions of each speedup case. */
  speedupReps: number;
  /** A configuration whose warm-up + repetitions would take longer than this is skipped (and says so). */
  budgetSeconds: number;
  /** Steps of the server's deployment in the /healthz phase, and how long /healthz is polled. */
  httpSteps: number;
  healthzSeconds: number;
}

const PLANS: Record<Preset, Plan> = {
  small: { reps: 5, speedupReps: 3, budgetSeconds: 120, httpSteps: 4, healthzSeconds: 20 },
  // A 512² UNet step of SD-Turbo costs seconds on 2 cores: one measured run per configuration.
  'sd-turbo': { reps: 1, speedupReps: 1, budgetSeconds: 600, httpSteps: 1, healthzSeconds: 60 },
  sd15: { reps: 1, speedupReps: 1, budgetSeconds: 600, httpSteps: 4, healthzSeconds: 60 },
};
const SECTIONS = ['speedup', 'sdxl', 'configs', 'healthz'] as const;
type Section = (typeof SECTIONS)[number];

const { values: args } = parseArgs({
  options: { preset: { type: 'string' }, sections: { type: 'string' }, factors: { type: 'boolean' } },
});
const preset = (args.preset ?? process.env.EASEL_BENCH_PRESET ?? 'small') as Preset;
if (!PRESETS.includes(preset)) {
  console.error(`preset must be one of ${PRESETS.join(', ')}, got "${preset}"`);
  process.exit(2);
}
const sections = (args.sections ?? process.env.EASEL_BENCH_SECTIONS ?? SECTIONS.join(','))
  .split(',')
  .filter(Boolean) as Section[];
const unknown = sections.filter((s) => !SECTIONS.includes(s));
if (unknown.length > 0) {
  console.error(`--sections takes ${SECTIONS.join(', ')}, got "${unknown.join(', ')}"`);
  process.exit(2);
}
const plan = PLANS[preset];
const CONFIGS = [
  { steps: 1, batch: 1 },
  { steps: 4, batch: 1 },
  { steps: 1, batch: 4 },
  { steps: 4, batch: 4 },
] as const;
const print = printer(preset);
/** The engine's own choice for a server with one model (EASEL_ONNX_THREADS overrides it, as in the server). */
const threadPlan = planOnnxThreads({
  configured: Number(process.env.EASEL_ONNX_THREADS ?? 0) || 0,
  diffusionModels: 1,
  concurrency: 1,
});

/** One configuration: its warm-up run, the process's peak RSS right after it, and the measured runs. */
interface Measured {
  steps: number;
  batch: number;
  warmUp: Run;
  peakRssMb: number;
  runs: Run[];
}

/** Medians over the repetitions, field by field (each UNet step by its index). */
function summarise({ steps, batch, runs, peakRssMb }: Measured) {
  const m = (pick: (run: Run) => number) => median(runs.map(pick));
  const wallMs = m((run) => run.wallMs);
  return {
    case: 'txt2img',
    size: `${SIZE}x${SIZE}`,
    guidance: 0,
    steps,
    batch,
    s_per_image: round(wallMs / batch / 1000, 3),
    // The fastest repetition is the least disturbed by other work on a shared machine.
    s_per_image_min: round(Math.min(...runs.map((run) => run.wallMs)) / batch / 1000, 3),
    wall_s: round(wallMs / 1000, 3),
    text_encoder_ms: round(m((run) => run.textEncoderMs)),
    unet_step_ms_mean: round(m((run) => sum(run.unetMs) / run.unetMs.length)),
    unet_steps_ms: Array.from({ length: steps }, (_, i) => round(m((run) => run.unetMs[i]!))),
    vae_decode_ms_per_image: round(m((run) => sum(run.vaeDecodeMs) / batch)),
    png_ms_per_image: round(m((run) => sum(run.pngMs) / batch)),
    overhead_ratio: round(
      m((run) => run.wallMs / run.modelMs),
      3,
    ),
    peak_rss_mb: peakRssMb,
    reps: runs.length,
  };
}

/**
 * Seconds one run of a configuration would take, from the warm-up of one with the same batch (4 steps × 4 from 1 × 4).
 */
function predictSeconds(steps: number, batch: number, done: Measured[]): number | undefined {
  const same = done.find((d) => d.batch === batch);
  if (!same) return undefined;
  const unet = same.warmUp.unetMs;
  return (same.warmUp.wallMs + (steps - same.steps) * (sum(unet) / unet.length)) / 1000;
}

async function measureInProcess(folder: string): Promise<Measured[]> {
  const started = performance.now();
  const model = await loadModel(folder, { intraOpNumThreads: threadPlan.diffusion });
  print({
    case: 'model load',
    threads: threadPlan.diffusion,
    seconds: round((performance.now() - started) / 1000, 2),
    peak_rss_mb: peakRssMb(),
  });
  const measured: Measured[] = [];
  try {
    // Warm-ups in order of growing memory, so the high-water mark after each is that configuration's peak.
    for (const { steps, batch } of CONFIGS) {
      const predicted = predictSeconds(steps, batch, measured);
      if (predicted !== undefined && predicted * (1 + plan.reps) > plan.budgetSeconds) {
        print({
          case: 'txt2img',
          size: `${SIZE}x${SIZE}`,
          steps,
          batch,
          skipped: true,
          predicted_s_per_run: round(predicted),
          reason: `warm-up + ${plan.reps} run(s) would exceed ${plan.budgetSeconds} s`,
        });
        continue;
      }
      const warmUp = await generate(model, steps, batch, 1);
      measured.push({ steps, batch, warmUp, peakRssMb: peakRssMb(), runs: [] });
    }
    // Repetitions interleaved: a busy moment on a shared machine slows every configuration alike.
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const m of measured) m.runs.push(await generate(model, m.steps, m.batch, 100 + rep));
    }
  } finally {
    await model.release();
  }
  for (const m of measured) print({ ...summarise(m), threads: threadPlan.diffusion, load_1m: load1m() });
  return measured;
}

/**
 * Throughput of one batch of 4 against four batches of 1, at each step count measured both ways.
 * The ratio is the median of per-repetition ratios (runs of the same round are neighbours in time).
 */
function compareBatching(measured: Measured[]): void {
  for (const steps of [1, 4]) {
    const one = measured.find((m) => m.steps === steps && m.batch === 1);
    const four = measured.find((m) => m.steps === steps && m.batch === 4);
    if (!one || !four) continue;
    const batched = 4 / (median(four.runs.map((r) => r.wallMs)) / 1000);
    const separate = 1 / (median(one.runs.map((r) => r.wallMs)) / 1000);
    const ratio = median(four.runs.map((r, i) => (4 * one.runs[i]!.wallMs) / r.wallMs));
    print({
      case: 'batch 4 vs 4 x batch 1',
      steps,
      images_per_s_batch4: round(batched, 3),
      images_per_s_4x1: round(separate, 3),
      ratio: round(ratio, 2),
    });
  }
}

/** GET /healthz every 10 ms for `seconds`; latencies in ms, and the event loop's own delay. */
async function pollHealthz(base: string, seconds: number) {
  const latencies: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const started = performance.now();
    const response = await fetch(`${base}/healthz`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`/healthz answered ${response.status}`);
    latencies.push(performance.now() - started);
    await sleep(10);
  }
  loop.disable();
  const sorted = latencies.sort((a, b) => a - b);
  return {
    p50_ms: round(quantile(sorted, 0.5)),
    p99_ms: round(quantile(sorted, 0.99)),
    max_ms: round(sorted[sorted.length - 1]!),
    samples: sorted.length,
    event_loop_delay_p99_ms: round(loop.percentile(99) / 1e6),
  };
}

/**
 * A real server on 127.0.0.1 with a diffusion deployment of the model: two clients keep a
 * generation each in flight through the HTTP API while /healthz is polled.
 */
async function healthzWhileGenerating(folder: string): Promise<void> {
  const app = await startTestApp({
    config: {
      models: { dir: dirname(folder) },
      deployments: [
        {
          name: 'dall-e-3',
          model: 'dall-e-3',
          engine: 'diffusion',
          diffusion: { folder: basename(folder), steps: plan.httpSteps, resolution: SIZE },
        },
      ],
      queue: { concurrency: 2, maxWaiting: 64, jobTimeoutSeconds: 1800 },
    },
  });
  try {
    const base = (await app.server.listen({ host: '127.0.0.1', port: 0 })).replace(/\/+$/, '');
    await app.modelsLoaded;
    const generateOverHttp = async (seed: number) => {
      const response = await fetch(`${base}/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`, {
        method: 'POST',
        headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: PROMPT, size: '1024x1024', seed }),
      });
      if (response.status !== 200) throw new Error(`generation answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    };
    print({ case: 'healthz idle', ...(await pollHealthz(base, 3)) });
    await generateOverHttp(0); // loads the worker's sessions for this shape
    let generating = true;
    let completed = 0;
    const started = performance.now();
    const clients = [0, 1].map(async (client) => {
      for (let i = 0; generating; i++) {
        await generateOverHttp(1000 * client + i);
        completed++;
      }
    });
    const health = await pollHealthz(base, plan.healthzSeconds);
    generating = false;
    await Promise.all(clients);
    const seconds = (performance.now() - started) / 1000;
    print({
      case: 'healthz during generation',
      ...health,
      generations: completed,
      generations_per_s: round(completed / seconds, 3),
      steps: plan.httpSteps,
      in_flight: 2,
      request: 'dall-e-3 1024x1024 url',
    });
  } finally {
    await app.dispose();
  }
}

/** What this bench does not run, and why, so that a reader of its output sees the gap. */
function skipped(): void {
  if (preset === 'sd-turbo') {
    console.log(
      JSON.stringify({
        bench: 'diffusion',
        case: 'cpu speedup',
        preset: 'sd15',
        steps: 4,
        skipped: true,
        reason:
          'its own run (another 4.3 GB model and about 4 UNet steps per case): npm run bench -- --preset sd15 --sections speedup',
      }),
    );
  }
}

// The preset's own folder, written only when a section uses it (`--sections sdxl` needs none).
const needsFolder = args.factors || sections.some((s) => s !== 'sdxl');
const folder = needsFolder ? await cachedModel(preset, print) : '';
if (sections.includes('speedup')) {
  await cpuSpeedup(folder, preset, plan.speedupReps, print);
  skipped();
}
if (sections.includes('sdxl')) await sdxlSpeedup(preset, plan.speedupReps);
if (sections.includes('configs')) compareBatching(await measureInProcess(folder));
if (sections.includes('healthz')) await healthzWhileGenerating(folder);
if (args.factors) await measureFactors(folder, preset, plan.reps, print);
