/**
 * The garbage collector (Azurite's gc): image records and their bytes expire together, bytes whose
 * record is gone are removed once they are old enough not to be a write in progress, and a job's
 * short-lived files (TRANSIENT_PREFIX) are removed once no job can still want them.
 *
 * Built for a bucket and database shared by many nodes (docs/scale-out.md, "Images in S3"): one node
 * sweeps per interval (the store's sweeper lease), expired records come in keyset pages, and the
 * orphan check reads one page of image keys per interval, resuming where the last pass stopped, so no
 * pass lists the whole bucket.
 */
import { TRANSIENT_PREFIX } from '../jobs/job-contract.ts';
import type { ExpiryCursor, ImageRecord, OperationStore } from '../jobs/operation-store.ts';
import type { BlobStore } from './blob-store.ts';
import { imageIdOfKey } from './image-keys.ts';

export interface SweeperLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface SweeperOptions {
  store: OperationStore;
  blobs: BlobStore;
  intervalSeconds: number;
  /** How old orphaned image bytes must be before they are deleted; default one hour. */
  orphanGraceSeconds?: number;
  /** How old a transient file must be before it is deleted; default one hour. */
  transientMaxAgeSeconds?: number;
  /** Expired records read per page, and image keys checked for orphans per pass; default 500. */
  pageSize?: number;
  /** Unix seconds; injectable for tests. */
  now?: () => number;
  log?: SweeperLog;
}

export interface SweepCounts {
  images: number;
  operations: number;
  orphans: number;
  transient: number;
}

/** Bytes written this long ago whose record is still missing are a leftover, not a write in progress. */
export const DEFAULT_ORPHAN_GRACE_SECONDS = 3600;
/**
 * Uploads, previews and b64_json results live for one job and its answer; a job runs for minutes at
 * most (queue.jobTimeoutSeconds), so an hour-old transient file belongs to nobody.
 */
export const DEFAULT_TRANSIENT_MAX_AGE_SECONDS = 3600;
export const DEFAULT_SWEEP_PAGE_SIZE = 500;

const IMAGES_PREFIX = 'images/';

export class Sweeper {
  readonly #store: OperationStore;
  readonly #blobs: BlobStore;
  readonly #intervalMs: number;
  readonly #graceSeconds: number;
  readonly #transientMaxAge: number;
  readonly #pageSize: number;
  readonly #now: () => number;
  readonly #log: SweeperLog | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<SweepCounts | null> | null = null;
  /** The last image key the orphan check looked at; '' starts from the beginning. */
  #orphanCursor = '';

  constructor(options: SweeperOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#intervalMs = options.intervalSeconds * 1000;
    this.#graceSeconds = options.orphanGraceSeconds ?? DEFAULT_ORPHAN_GRACE_SECONDS;
    this.#transientMaxAge = options.transientMaxAgeSeconds ?? DEFAULT_TRANSIENT_MAX_AGE_SECONDS;
    this.#pageSize = options.pageSize ?? DEFAULT_SWEEP_PAGE_SIZE;
    if (!Number.isInteger(this.#pageSize) || this.#pageSize < 1) {
      throw new RangeError('The sweeper page size must be a positive integer.');
    }
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#log = options.log;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.sweepOnce().catch((error: unknown) => this.#log?.warn({ err: error }, 'sweep failed'));
    }, this.#intervalMs);
    // The sweeper alone must not keep the process alive.
    this.#timer.unref();
  }

  /** Stops the timer and waits for a sweep in progress, so the store can be closed after it. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /**
   * One pass; a pass already running is joined rather than run twice at once. Null when another
   * sweeper (another node sharing the store) holds the lease: this interval is its.
   */
  sweepOnce(): Promise<SweepCounts | null> {
    this.#running ??= this.#leasedSweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #leasedSweep(): Promise<SweepCounts | null> {
    const lease = this.#store.tryAcquireSweepLock ? await this.#store.tryAcquireSweepLock() : null;
    if (this.#store.tryAcquireSweepLock && !lease) return null;
    try {
      return await this.#sweep();
    } finally {
      await lease?.release();
    }
  }

  async #sweep(): Promise<SweepCounts> {
    const now = this.#now();
    const counts: SweepCounts = { images: 0, operations: 0, orphans: 0, transient: 0 };
    await this.#sweepOperations(now, counts);
    await this.#sweepImages(now, counts);
    counts.orphans = await this.#sweepOrphanPage(now);
    counts.transient = await this.#sweepTransient(now);
    if (counts.images + counts.operations + counts.orphans + counts.transient > 0) {
      this.#log?.info({ ...counts }, 'swept expired data');
    }
    return counts;
  }

  /**
   * Expired operations page by page. The cursor moves past each page whether or not its deletions
   * worked, so a record that cannot be deleted now is retried next pass, never in a loop.
   */
  async #sweepOperations(now: number, counts: SweepCounts): Promise<void> {
    let after: ExpiryCursor | null = null;
    do {
      const page = await this.#store.expiredOperationsPage(now, after, this.#pageSize);
      for (const operationId of page.items) {
        const ok = await this.#attempt({ operationId }, async () => {
          // An operation's images go with it, even those whose own expiry is later.
          for (const image of await this.#store.listImagesOfOperation(operationId)) {
            if (await this.#deleteImage(image)) counts.images++;
          }
          await this.#store.deleteOperation(operationId);
        });
        if (ok) counts.operations++;
      }
      after = page.next;
    } while (after);
  }

  async #sweepImages(now: number, counts: SweepCounts): Promise<void> {
    let after: ExpiryCursor | null = null;
    do {
      const page = await this.#store.expiredImagesPage(now, after, this.#pageSize);
      for (const image of page.items) if (await this.#deleteImage(image)) counts.images++;
      after = page.next;
    } while (after);
  }

  /** Bytes first, then the record: if the bytes cannot be deleted, the record stays for next time. */
  #deleteImage(image: ImageRecord): Promise<boolean> {
    return this.#attempt({ imageId: image.id, key: image.key }, async () => {
      await this.#blobs.delete(image.key);
      await this.#store.deleteImage(image.id);
    });
  }

  /**
   * One page of image keys after the cursor; the last page wraps the cursor to the start. A bucket
   * of K image keys is checked in full every ceil(K / pageSize) passes, at the cost of one list
   * request and at most pageSize record lookups per pass. The cursor lives in this process: after a
   * restart, or when another node took the lease, checking starts over from the first key, which only
   * delays some orphan's removal.
   */
  async #sweepOrphanPage(now: number): Promise<number> {
    const page = await this.#blobs.list(IMAGES_PREFIX, {
      limit: this.#pageSize,
      ...(this.#orphanCursor !== '' ? { startAfter: this.#orphanCursor } : {}),
    });
    this.#orphanCursor = page.next ?? '';
    let orphans = 0;
    for (const { key, modified } of page.entries) {
      const imageId = imageIdOfKey(key);
      // Bytes just written have their record stored next: leave them their grace period.
      if (imageId === null || now - modified < this.#graceSeconds) continue;
      const deleted = await this.#attempt({ key }, async () => {
        if ((await this.#store.getImage(imageId))?.key === key) return false;
        await this.#blobs.delete(key);
        return true;
      });
      if (deleted) orphans++;
    }
    return orphans;
  }

  /** Lists the transient prefix only; it holds what running jobs use now, so it stays small. */
  async #sweepTransient(now: number): Promise<number> {
    let removed = 0;
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.#blobs.list(TRANSIENT_PREFIX, {
        limit: this.#pageSize,
        ...(startAfter !== undefined ? { startAfter } : {}),
      });
      for (const { key, modified } of page.entries) {
        if (now - modified < this.#transientMaxAge) continue;
        if (await this.#attempt({ key }, () => this.#blobs.delete(key))) removed++;
      }
      if (page.next === null) return removed;
      startAfter = page.next;
    }
  }

  /** Runs one deletion; a failure is logged and the sweep goes on. Resolves to whether it did. */
  async #attempt(details: object, action: () => Promise<boolean | void>): Promise<boolean> {
    try {
      return (await action()) !== false;
    } catch (error) {
      this.#log?.warn({ ...details, err: error }, 'sweeper could not delete');
      return false;
    }
  }
}
