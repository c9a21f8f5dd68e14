import type { NsfwProbabilities } from './severity.ts';

/** Edge of the square the MobileNetV2 model takes. */
export const INPUT_SIZE = 224;

/** The classifier thread's methods (src/runtime/worker-rpc.ts carries them). */
export type NsfwWorkerMethods = {
  /** Loads the bundled model; a failure leaves the thread holding nothing. */
  load: { input: null; output: null };
  classify: { input: { width: number; height: number; channels: 3 | 4; data: Uint8Array }; output: NsfwProbabilities };
};
