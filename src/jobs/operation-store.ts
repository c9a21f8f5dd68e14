/**
 * Operations (DALL-E 2 `:submit`) and image records, kept apart from image bytes.
 * Embedded adapter: SQLite in the data directory; a Redis adapter can follow the same contract
 * (test/jobs/operation-store.contract.ts).
 */

/** Azure's AzureOpenAIOperationState. */
export type OperationStatus = 'notRunning' | 'running' | 'succeeded' | 'failed' | 'canceled' | 'deleted';
export const TERMINAL_STATUSES: readonly OperationStatus[] = ['succeeded', 'failed', 'canceled'];

export interface OperationError {
  code: string;
  message: string;
}

/** One item of a finished operation: an image, or the reason it is missing. */
export type OperationItem = { imageId: string } | { error: OperationError };

export interface OperationRecord {
  id: string;
  status: OperationStatus;
  deployment: string;
  /** The normalized request, as JSON-safe data, so the operation can be resumed after a restart. */
  request: Record<string, unknown>;
  /** Unix seconds. */
  created: number;
  /** Unix seconds after which the operation and its images are swept. */
  expires: number;
  /** Unix seconds of the last state move. */
  updated: number;
  result: { created: number; items: OperationItem[] } | null;
  error: OperationError | null;
}

export interface ImageRecord {
  id: string;
  /** BlobStore key of the bytes. */
  key: string;
  contentType: string;
  width: number;
  height: number;
  deployment: string;
  operationId: string | null;
  /** Unix seconds. */
  created: number;
  expires: number;
}

export interface OperationStore extends ExpiryPages, Partial<SweepLock> {
  /** Insert a new operation; the id must be new. */
  createOperation(record: OperationRecord): Promise<void>;
  getOperation(id: string): Promise<OperationRecord | null>;
  /**
   * Atomically apply `patch` if the operation's status is one of `from`; returns the updated
   * record, or null when the operation is missing or in another state. All state moves go
   * through here (see jobs/operations.ts), so two writers can never both win.
   */
  transition(
    id: string,
    from: readonly OperationStatus[],
    patch: Partial<Pick<OperationRecord, 'status' | 'updated' | 'result' | 'error'>> & { status: OperationStatus },
  ): Promise<OperationRecord | null>;
  /** Operations in any of these states, oldest first (restart recovery). */
  listOperations(statuses: readonly OperationStatus[]): Promise<OperationRecord[]>;
  deleteOperation(id: string): Promise<void>;

  putImage(record: ImageRecord): Promise<void>;
  getImage(id: string): Promise<ImageRecord | null>;
  listImagesOfOperation(operationId: string): Promise<ImageRecord[]>;
  deleteImage(id: string): Promise<void>;

  /** Records whose `expires` is at or before `now` (unix seconds), all at once; the sweeper reads pages (ExpiryPages). */
  listExpired(now: number): Promise<{ operationIds: string[]; images: ImageRecord[] }>;
  close(): Promise<void>;
}

/** Where a page of expired records ended: the next page starts after (expires, id). */
export interface ExpiryCursor {
  expires: number;
  id: string;
}

export interface ExpiryPage<T> {
  items: T[];
  /** Null on the last page. */
  next: ExpiryCursor | null;
}

/**
 * Expired records in pages ordered by (expires, id), so the sweeper never loads every expired row
 * at once (keyset pagination: each page is an index range scan, unaffected by rows deleted behind
 * it). Part of every OperationStore.
 */
export interface ExpiryPages {
  expiredOperationsPage(now: number, after: ExpiryCursor | null, limit: number): Promise<ExpiryPage<string>>;
  expiredImagesPage(now: number, after: ExpiryCursor | null, limit: number): Promise<ExpiryPage<ImageRecord>>;
}

/** A held sweeper lock; release it when the pass ends. */
export interface SweepLease {
  release(): Promise<void>;
}

/**
 * Optional part of an OperationStore: at most one sweeper at a time holds the lease; the others skip
 * their pass. Null means another holder has it now. A store shared by several nodes must offer it
 * (PostgreSQL: an advisory lock); the SQLite store, one process per data directory, holds it in
 * memory. A store without it lets every sweeper run.
 */
export interface SweepLock {
  tryAcquireSweepLock(): Promise<SweepLease | null>;
}
