/**
 * The decoded pixels edits may hold: per request, and for all admitted edits together. A request is
 * measured from its uploads' headers before anything is decoded (codec/edit-uploads.ts), so the
 * memory a burst of edits can take is known and capped before it is spent.
 */
export class PixelBudget {
  private used = 0;

  constructor(
    /** Most decoded pixels one edit may hold; more is refused with a 400. */
    readonly perRequest: number,
    /** Most decoded pixels all admitted edits may hold together; more is refused with a 429. */
    readonly inFlight: number,
  ) {}

  /**
   * Hold `pixels` until the returned release is called (once; later calls do nothing), or null when they do not fit
   * now.
   */
  reserve(pixels: number): (() => void) | null {
    if (this.used + pixels > this.inFlight) return null;
    this.used += pixels;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= pixels;
    };
  }

  /** Pixels held by admitted edits now. */
  inUse(): number {
    return this.used;
  }
}
