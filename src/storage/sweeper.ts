/**
 * The garbage collector (Azurite's gc): image records and their bytes expire together, and bytes
 * whose record is gone are removed once they are old enough not to be a write in progress.
 */
import type { ImageRecord, OperationStore } from '../jobs/operation-store.ts';
import type { BlobStore } from './blob-store.ts';
import { imageIdOfKey } from './image-keys.ts';

/**
 * A BlobStore that can tell when a key was last written (FsBlobStore can; an S3 adapter can from
 * LastModified). Without it the sweeper never deletes orphans, since it cannot tell a leftover
 * from bytes written a moment ago whose record is about to be stored.
 */
export interface BlobAges {
  /** Unix seconds of the last write, or null when the key does not exist. */
  lastModified(key: string): Promise<number | null>;
}

export interface SweeperLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface SweeperOptions {
  store: OperationStore;
  blobs: BlobStore & Partial<BlobAges>;
  intervalSeconds: number;
  /** How old orphaned bytes must be before they are deleted; default one hour. */
  orphanGraceSeconds?: number;
  /** Unix seconds; injectable for tests. */
  now?: () => number;
  log?: SweeperLog;
}

export interface SweepCounts {
  images: number;
  operations: number;
  orphans: number;
}

export const DEFAULT_ORPHAN_GRACE_SECONDS = 3600;

export class Sweeper {
  readonly #store: OperationStore;
  readonly #blobs: BlobStore & Partial<BlobAges>;
  readonly #intervalMs: number;
  readonly #graceSeconds: number;
  readonly #now: () => number;
  readonly #log: SweeperLog | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<SweepCounts> | null = null;

  constructor(options: SweeperOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#intervalMs = options.intervalSeconds * 1000;
    this.#graceSeconds = options.orphanGraceSeconds ?? DEFAULT_ORPHAN_GRACE_SECONDS;
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

  /** One pass; a pass already running is joined rather than run twice at once. */
  sweepOnce(): Promise<SweepCounts> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #sweep(): Promise<SweepCounts> {
    const now = this.#now();
    const counts: SweepCounts = { images: 0, operations: 0, orphans: 0 };
    const expired = await this.#store.listExpired(now);

    for (const operationId of expired.operationIds) {
      const ok = await this.#attempt({ operationId }, async () => {
        // An operation's images go with it, even those whose own expiry is later.
        for (const image of await this.#store.listImagesOfOperation(operationId)) {
          if (await this.#deleteImage(image)) counts.images++;
        }
        await this.#store.deleteOperation(operationId);
      });
      if (ok) counts.operations++;
    }

    for (const image of expired.images) {
      // Already gone with its operation above.
      if (image.operationId !== null && expired.operationIds.includes(image.operationId)) continue;
      if (await this.#deleteImage(image)) counts.images++;
    }

    counts.orphans = await this.#sweepOrphans(now);
    if (counts.images + counts.operations + counts.orphans > 0) this.#log?.info({ ...counts }, 'swept expired data');
    return counts;
  }

  /** Bytes first, then the record: if the bytes cannot be deleted, the record stays for next time. */
  #deleteImage(image: ImageRecord): Promise<boolean> {
    return this.#attempt({ imageId: image.id, key: image.key }, async () => {
      await this.#blobs.delete(image.key);
      await this.#store.deleteImage(image.id);
    });
  }

  async #sweepOrphans(now: number): Promise<number> {
    const lastModified = this.#blobs.lastModified?.bind(this.#blobs);
    if (!lastModified) return 0;
    let orphans = 0;
    for await (const key of this.#blobs.keys()) {
      const imageId = imageIdOfKey(key);
      if (imageId === null) continue;
      const deleted = await this.#attempt({ key }, async () => {
        if ((await this.#store.getImage(imageId))?.key === key) return false;
        const modified = await lastModified(key);
        if (modified === null || now - modified < this.#graceSeconds) return false;
        await this.#blobs.delete(key);
        return true;
      });
      if (deleted) orphans++;
    }
    return orphans;
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
