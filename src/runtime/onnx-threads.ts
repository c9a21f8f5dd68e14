// How many CPU threads each onnxruntime session gets, chosen from the machine unless configured.
//
// Each InferenceSession owns its own intra-op thread pool (onnxruntime-node exposes no shared
// pool), so the count is per session. Left unset, onnxruntime sizes the pool by the *physical*
// cores its cpuinfo finds and pins each pool thread to one core (its default affinity); on a 2-vCPU
// VM that is two threads, the second one pinned to CPU 1 (counted: docs/cpu-performance.md). That
// default knows nothing of the other models in the process, so two models computing at once run
// four threads on two cores, and a pinned thread cannot move off a core that other work holds. An
// explicit count gives unpinned threads the OS can place. easel therefore sets the count itself,
// from os.availableParallelism() (which honours CPU affinity masks).
//
// Oversubscription: the cores are divided among the diffusion models that can run at the same
// time. A model folder has one worker thread that runs its jobs one after another, and the queue
// runs at most `queue.concurrency` jobs at once, so min(concurrency, distinct folders) models can
// be computing together; each gets an equal share (at least one thread). Within a model the text
// encoder, UNet and VAE run one after another, so their pools never compete. ONNX text
// classifiers run for milliseconds per prompt at admission; they get one thread, so they take at
// most one core's slice beside a generation instead of a second full pool.
import { availableParallelism } from 'node:os';

import type { Config } from '../config/index.ts';

export interface OnnxThreadInputs {
  /** `onnx.threads`: 0 = automatic. */
  configured: number;
  /** Distinct diffusion model folders configured. */
  diffusionModels: number;
  /** `queue.concurrency`: generations running at once. */
  concurrency: number;
  /** Logical CPUs available to the process; default os.availableParallelism(). */
  cores?: number;
}

export interface OnnxThreadPlan {
  /** intra-op threads of every session of a diffusion model. */
  diffusion: number;
  /** intra-op threads of an ONNX prompt classifier's session. */
  classifier: number;
  /** How the numbers were chosen, for the start-up log. */
  reason: string;
}

export function planOnnxThreads({
  configured,
  diffusionModels,
  concurrency,
  cores = availableParallelism(),
}: OnnxThreadInputs): OnnxThreadPlan {
  if (configured > 0) return { diffusion: configured, classifier: configured, reason: `onnx.threads = ${configured}` };
  const together = Math.max(1, Math.min(concurrency, diffusionModels));
  const diffusion = Math.max(1, Math.floor(cores / together));
  return {
    diffusion,
    classifier: 1,
    reason: `${cores} cores / ${together} diffusion model(s) that can run at once`,
  };
}

/** The plan for a configuration: diffusion deployments, the queue's concurrency and `onnx.threads`. */
export function onnxThreadPlan(config: Pick<Config, 'deployments' | 'queue' | 'onnx'>, cores?: number): OnnxThreadPlan {
  const folders = new Set(config.deployments.flatMap((d) => (d.engine === 'diffusion' ? [d.diffusion.folder] : [])));
  return planOnnxThreads({
    configured: config.onnx.threads,
    diffusionModels: folders.size,
    concurrency: config.queue.concurrency,
    ...(cores !== undefined ? { cores } : {}),
  });
}
