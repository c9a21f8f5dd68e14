// One measurement in a process of its own, so that its peak RSS is its own and a configuration's
// threads and arena never outlive it: loads the model folder with the given session options, runs
// each variant once to warm up (recording the peak RSS after each, in the order given), then the
// measured repetitions round-robin over the variants, and prints one JSON line with the runs.
// Started by bench/diffusion/run-child.ts; not a bench of its own.
import { performance } from 'node:perf_hooks';

import type ort from 'onnxruntime-node';

import { loadModel } from '../../src/engines/diffusion/model/index.ts';
import { TINY_DECODER_DIR } from '../../tools/model-builder/taesd.ts';
import { generate, peakRssMb, type Run } from './common.ts';

export type Variant = 'full' | 'tiny';

export interface ChildJob {
  folder: string;
  steps: number;
  reps: number;
  /** intra-op threads; null = onnxruntime's own default. */
  threads: number | null;
  tuning?: ort.InferenceSession.SessionOptions;
  /** The UNet's attention rewrite (LoadModelOptions.fuseAttention); unset = the engine's default (on). */
  fuseAttention?: boolean;
  variants: Variant[];
}

export interface VariantResult {
  warmUp: Run;
  peakRssMb: number;
  runs: Run[];
}

export interface ChildResult {
  loadSeconds: number;
  peakRssAfterLoadMb: number;
  variants: Partial<Record<Variant, VariantResult>>;
}

async function main(job: ChildJob): Promise<ChildResult> {
  const loadOptions = {
    ...(job.threads !== null ? { intraOpNumThreads: job.threads } : {}),
    ...(job.tuning ? { tuning: job.tuning } : {}),
    ...(job.fuseAttention !== undefined ? { fuseAttention: job.fuseAttention } : {}),
  };
  const started = performance.now();
  const model = await loadModel(job.folder, loadOptions);
  const loadSeconds = (performance.now() - started) / 1000;
  const peakRssAfterLoadMb = peakRssMb();
  const results: Partial<Record<Variant, VariantResult>> = {};
  try {
    if (job.variants.includes('tiny') && !model.sessions.tinyDecoder)
      throw new Error(`${job.folder} has no ${TINY_DECODER_DIR}/model.onnx`);
    for (const variant of job.variants) {
      const warmUp = await generate(model, job.steps, 1, 1, variant);
      results[variant] = { warmUp, peakRssMb: peakRssMb(), runs: [] };
    }
    // Round-robin: a busy moment on a shared machine slows every variant alike.
    for (let rep = 0; rep < job.reps; rep++) {
      for (const variant of job.variants)
        results[variant]!.runs.push(await generate(model, job.steps, 1, 100 + rep, variant));
    }
  } finally {
    await model.release();
  }
  return { loadSeconds, peakRssAfterLoadMb, variants: results };
}

const job = JSON.parse(process.argv[2]!) as ChildJob;
console.log(`RESULT ${JSON.stringify(await main(job))}`);
