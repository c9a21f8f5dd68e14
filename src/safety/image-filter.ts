import type { ContentFilterResults } from '../contract/annotations.ts';
import type { RawImage } from '../contract/request.ts';

export interface ImageVerdict {
  /** The image must not be stored or returned. */
  blocked: boolean;
  /** The annotation object Azure puts in `content_filter_results`. */
  results: ContentFilterResults;
  /**
   * Set when blocked: which filter (and model) withheld the image and for which category, e.g.
   * "the image classifier (nsfwjs MobileNetV2) rated it sexual: medium"; for the answer and the log.
   */
  reason?: string;
}

export interface ImageFilterContext {
  deployment: string;
  moderation: 'low' | 'auto';
  /** The engine that drew the image ("placeholder", "diffusion", …). */
  engine: string;
}

/** Scores each generated image before it is stored. */
export interface ImageFilter {
  readonly name: string;
  check(image: RawImage, context: ImageFilterContext): Promise<ImageVerdict>;
}
