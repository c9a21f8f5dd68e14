import { categoriesAt } from '../contract/annotations.ts';
import type { ImageFilter, ImageVerdict } from './image-filter.ts';

/** Lets every image through and says so: the image classifier is configured separately. */
export class PassImageFilter implements ImageFilter {
  readonly name = 'none';
  async check(): Promise<ImageVerdict> {
    return { blocked: false, results: categoriesAt('safe') };
  }
}
