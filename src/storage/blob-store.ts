/**
 * Image bytes, by key. Records about the bytes (expiry, operation) live in the OperationStore;
 * the sweeper deletes both together. Embedded adapter: files in the data directory
 * (fs-blob-store.ts); for several nodes, an S3-compatible bucket (s3-blob-store.ts).
 */
import type { Readable } from 'node:stream';

/** Bytes opened for reading: a stream the reader must consume or destroy, and its length. */
export interface OpenedBlob {
  stream: Readable;
  /** Bytes the stream will deliver. */
  size: number;
}

/** One listed key. */
export interface BlobEntry {
  key: string;
  /** Unix seconds of the last write. */
  modified: number;
}

export interface ListOptions {
  /** Only keys after this one (exclusive): the `next` of the previous page, or any key to resume from. */
  startAfter?: string;
  /** Keys in the page, at most; default 1000 (S3's own maximum). */
  limit?: number;
}

export interface BlobPage {
  /** In ascending key order (code-unit order, which is byte order for the ASCII keys easel makes). */
  entries: BlobEntry[];
  /** Pass as `startAfter` for the next page; null when this was the last one. */
  next: string | null;
}

export interface BlobStore {
  /** Store bytes under a key ("images/<id>.png"); replaces any earlier bytes. */
  put(key: string, bytes: Buffer): Promise<void>;
  /** The bytes, or null when the key does not exist. */
  get(key: string): Promise<Buffer | null>;
  /** The bytes as a stream with their length, or null when the key does not exist. */
  open(key: string): Promise<OpenedBlob | null>;
  /** Remove a key; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** One page of the keys that start with `prefix`, so a caller never needs the whole store at once. */
  list(prefix: string, options?: ListOptions): Promise<BlobPage>;
}

/** Optional capability of stores whose bytes clients can fetch directly (S3 presigned URLs). */
export interface BlobPresigning {
  /**
   * A URL that downloads the key without credentials until `expiresUnix` (unix seconds), and not
   * after. `contentType` and `filename` set the answer's Content-Type and Content-Disposition.
   */
  presignedGetUrl(
    key: string,
    expiresUnix: number,
    options?: { contentType?: string; filename?: string },
  ): Promise<string>;
}

export const DEFAULT_LIST_LIMIT = 1000;

/** Every entry under `prefix`, page by page (tests and small stores; the sweeper pages itself). */
export async function* listAll(
  blobs: BlobStore,
  prefix: string,
  pageSize = DEFAULT_LIST_LIMIT,
): AsyncGenerator<BlobEntry> {
  let startAfter: string | undefined;
  for (;;) {
    const page = await blobs.list(prefix, { limit: pageSize, ...(startAfter !== undefined ? { startAfter } : {}) });
    yield* page.entries;
    if (page.next === null) return;
    startAfter = page.next;
  }
}

/**
 * A store that cannot be reached, or that refuses easel's credentials, raises this rather than a raw
 * SDK or socket error; the HTTP layer answers 503 (errors.storageUnavailable), never hangs or crashes.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}
