import { categoriesAt, type ContentFilterResults } from '../contract/annotations.ts';
import type { RawImage } from '../contract/request.ts';
import type { ClassifierFailurePolicy } from './classifier.ts';
import type { ImageFilter, ImageFilterContext, ImageVerdict } from './image-filter.ts';
import type { NsfwClassifier } from './nsfw/classifier.ts';
import { sexualSeverity } from './nsfw/severity.ts';
import { blocksAt, type SafetyPolicy } from './policy.ts';

export interface NsfwImageFilterOptions {
  policy: SafetyPolicy;
  classifier: NsfwClassifier;
  /** What happens to an image when the classifier throws or times out. */
  onFailure: ClassifierFailurePolicy;
}

/**
 * The pretrained nsfwjs classifier (MobileNetV2, bundled in the npm package) as the image filter.
 * It judges `sexual` only (severity from SEXUAL_SEVERITY_TABLE); `hate`, `violence` and
 * `self_harm` read `safe` because this model does not look for them. It blocks at the same
 * thresholds as the prompt filter. When the classifier fails, the image is blocked (or, under
 * `allow`, passed) and the annotation carries `error` as Azure's does when its filter fails.
 */
export class NsfwImageFilter implements ImageFilter {
  readonly name = 'nsfwjs';
  /** How answers and logs name this filter. */
  static readonly description = 'the image classifier (nsfwjs MobileNetV2)';

  constructor(private readonly options: NsfwImageFilterOptions) {}

  async check(image: RawImage, context: Pick<ImageFilterContext, 'deployment' | 'moderation'>): Promise<ImageVerdict> {
    let severity;
    try {
      severity = sexualSeverity(await this.options.classifier.classify(image));
    } catch (error) {
      const block = this.options.onFailure === 'block';
      const results: ContentFilterResults = {
        ...categoriesAt('safe'),
        error: {
          code: 'content_filter_error',
          message: block
            ? `The image could not be filtered and was withheld (${(error as Error).message}).`
            : `The contents are not filtered (${(error as Error).message}).`,
        },
      };
      return {
        blocked: block,
        results,
        ...(block ? { reason: `${NsfwImageFilter.description} failed: ${(error as Error).message}` } : {}),
      };
    }
    const filtered = blocksAt(this.options.policy.thresholds(context).sexual, severity);
    const results = { ...categoriesAt('safe'), sexual: { filtered, severity } };
    return filtered
      ? { blocked: true, results, reason: `${NsfwImageFilter.description} rated it sexual: ${severity}` }
      : { blocked: false, results };
  }
}
