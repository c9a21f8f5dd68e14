import type { ContentFilterResults } from '../contract/annotations.ts';
import type { RawImage } from '../contract/request.ts';

export interface ImageVerdict {
  /** The image must not be stored or returned. */
  blocked: boolean;
  /** The annotation object Azure puts in `content_filter_results`. */
  results: ContentFilterResults;
}

/** Scores each generated image before it is stored. */
export interface ImageFilter {
  readonly name: string;
  check(image: RawImage, context: { deployment: string; moderation: 'low' | 'auto' }): Promise<ImageVerdict>;
}
