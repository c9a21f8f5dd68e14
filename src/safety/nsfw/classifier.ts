import type { RawImage } from '../../contract/request.ts';
import type { NsfwProbabilities } from './severity.ts';

/** Scores one image with the five nsfwjs classes. */
export interface NsfwClassifier {
  classify(image: RawImage): Promise<NsfwProbabilities>;
  close(): Promise<void>;
}
