// Every onnxruntime run of a pipeline goes through here, so the time spent inside the model is known
// per stage. The benchmark's overhead ratio (pipeline wall time / model time) and the per-stage
// figures come from these numbers; the pipeline itself never reads a clock.
import type ort from 'onnxruntime-node';

/** vae_tiny_*: the tiny autoencoder as the deployment's autoencoder; preview: tiny decodes of intermediate latents. */
export type Stage =
  | 'text_encoder'
  | 'text_encoder_2'
  | 'unet'
  | 'vae_encoder'
  | 'vae_decoder'
  | 'vae_tiny_encoder'
  | 'vae_tiny_decoder'
  | 'preview';

export interface StageTimings {
  /** Milliseconds of each `session.run` call, per stage, in call order. */
  runs: Partial<Record<Stage, number[]>>;
  /** Wall time of the whole pipeline call, milliseconds. */
  totalMs: number;
}

export class RunTimer {
  readonly runs: Partial<Record<Stage, number[]>> = {};

  async run(
    stage: Stage,
    session: ort.InferenceSession,
    feeds: Record<string, ort.Tensor>,
  ): Promise<ort.InferenceSession.ReturnType> {
    const start = performance.now();
    const out = await session.run(feeds);
    (this.runs[stage] ??= []).push(performance.now() - start);
    return out;
  }

  /** Sum of every run, milliseconds. */
  get modelMs(): number {
    return Object.values(this.runs).reduce((sum, list) => sum + list.reduce((a, b) => a + b, 0), 0);
  }
}
