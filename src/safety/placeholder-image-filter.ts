import { categoriesAt } from '../contract/annotations.ts';
import type { RawImage } from '../contract/request.ts';
import type { ImageFilter, ImageFilterContext, ImageVerdict } from './image-filter.ts';

/** Why the image classifier did not look at a placeholder picture, as the annotation says it. */
export const PLACEHOLDER_NOT_APPLICABLE =
  'not applicable: a placeholder picture, drawn by easel from the prompt after the prompt filter passed it; ' +
  'the image classifier runs on real engines (safety.classifyPlaceholderImages turns it on here)';

/**
 * The image classifier for real engines only. A placeholder picture holds nothing but the prompt
 * (already judged by the prompt filter), shapes and colours, so classifying it protects nobody,
 * and a classifier trained on photographs misreads some of its flat discs as explicit drawings.
 * Its annotation keeps Azure's four categories (clients read them) unfiltered, and says in
 * `image_filter` that the classifier did not run.
 */
export class RealEnginesImageFilter implements ImageFilter {
  readonly name: string;

  constructor(private readonly inner: ImageFilter) {
    this.name = inner.name;
  }

  async check(image: RawImage, context: ImageFilterContext): Promise<ImageVerdict> {
    if (context.engine !== 'placeholder') return this.inner.check(image, context);
    return {
      blocked: false,
      results: { ...categoriesAt('safe'), image_filter: { ran: false, reason: PLACEHOLDER_NOT_APPLICABLE } },
    };
  }
}
