// The SDXL section of the diffusion bench: the speedup cases (a)/(b)/(c) of bench/diffusion/speedup.ts on the
// SDXL-Turbo architecture (512², one step, batch 1; the tiny decoder is TAESDXL, TAESD's architecture), run beside
// the sd-turbo preset; the small preset runs the same code on sdxl-small (every SDXL block kind at small widths).
//
// SDXL-Turbo's fp32 weights are 13.9 GB, so the section first asks whether the machine can hold one loaded model
// (each case loads its own, one after another) and the folder on disk; when it cannot, it prints why and skips.
import { readFileSync, statfsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { freemem } from 'node:os';

import { countParameters } from '../../tools/model-builder/architectures.ts';
import { BENCH_MODELS_DIR, cachedModel, isCached, type ModelPreset, type Preset, printer, round } from './common.ts';
import { cpuSpeedup } from './speedup.ts';

/** The SDXL architecture measured beside each bench preset (sd15 has none: its own run is long already). */
const SDXL_PRESET: Partial<Record<Preset, ModelPreset>> = { small: 'sdxl-small', 'sd-turbo': 'sdxl-turbo' };

/**
 * Peak RSS of one loaded SDXL model as a multiple of its fp32 weights, plus a fixed part (the runtime, activations at
 * 512², the tiny autoencoder); measured on sdxl-turbo with onnxruntime-node 1.30 at 13.8–15.8 GB for 13.9 GB of
 * weights (docs/cpu-performance.md, "SDXL-Turbo").
 */
const RSS_PER_WEIGHT_BYTE = 1.1;
const RSS_FIXED_BYTES = 1.5e9;
/** Room left to the rest of the machine (the OS, the bench's parent process, page cache for the weights' reads). */
const HEADROOM_BYTES = 1e9;

const GB = 1e9;

/** Bytes this process may still allocate: MemAvailable, or less under a cgroup v2 memory limit. */
function availableMemory(): number {
  let available = freemem();
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    const current = Number(readFileSync('/sys/fs/cgroup/memory.current', 'utf8').trim());
    if (max !== 'max' && Number.isFinite(current)) available = Math.min(available, Number(max) - current);
  } catch {
    // No cgroup v2 memory controller: MemAvailable it is.
  }
  return available;
}

export async function sdxlSpeedup(preset: Preset, reps: number): Promise<void> {
  const xl = SDXL_PRESET[preset];
  if (!xl) return;
  const print = printer(xl);
  const weights = countParameters(xl).total * 4;
  const required = weights * RSS_PER_WEIGHT_BYTE + RSS_FIXED_BYTES + HEADROOM_BYTES;
  const available = availableMemory();
  const skip = (reason: string, figures: object = {}) =>
    console.log(
      JSON.stringify({
        bench: 'diffusion',
        case: 'cpu speedup',
        preset: xl,
        steps: 1,
        skipped: true,
        reason,
        ...figures,
      }),
    );
  if (available < required) {
    skip(
      `not enough free memory for one loaded ${xl} model: ${round(available / GB, 1)} GB available, about ` +
        `${round(required / GB, 1)} GB needed (fp32 weights ${round(weights / GB, 1)} GB; peak RSS ≈ ` +
        `${RSS_PER_WEIGHT_BYTE} × weights + ${round(RSS_FIXED_BYTES / GB, 1)} GB, plus ${round(HEADROOM_BYTES / GB, 1)} GB for the rest of the machine)`,
      { available_gb: round(available / GB, 1), required_gb: round(required / GB, 1) },
    );
    return;
  }
  if (!isCached(xl)) {
    await mkdir(BENCH_MODELS_DIR, { recursive: true });
    const { bavail, bsize } = statfsSync(BENCH_MODELS_DIR);
    const free = bavail * bsize;
    // The folder: the weights, TAESDXL and the graphs; 10 % for the rest of the disk.
    if (free < weights * 1.1) {
      skip(
        `not enough disk for the ${xl} folder: ${round(free / GB, 1)} GB free in ${BENCH_MODELS_DIR}, ${round((weights * 1.1) / GB, 1)} GB needed`,
      );
      return;
    }
  }
  print({
    case: 'memory check',
    available_gb: round(available / GB, 1),
    required_gb: round(required / GB, 1),
    weights_gb: round(weights / GB, 1),
  });
  const folder = await cachedModel(xl, print);
  await cpuSpeedup(folder, xl, reps, print);
}
