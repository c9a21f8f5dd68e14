import type { NsfwProbabilities } from './severity.ts';

/** Edge of the square the MobileNetV2 model takes. */
export const INPUT_SIZE = 224;

export type ToClassifier = { type: 'classify'; id: number; width: number; height: number; channels: 3 | 4; data: Uint8Array };
export type FromClassifier =
  | { type: 'ready' }
  | { type: 'loadFailed'; message: string }
  | { type: 'result'; id: number; probabilities: NsfwProbabilities }
  | { type: 'failed'; id: number; message: string };
