/**
 * Image bytes, by key. Records about the bytes (expiry, operation) live in the OperationStore;
 * the sweeper deletes both together. Embedded adapter: files in the data directory.
 */
export interface BlobStore {
  /** Store bytes under a key ("images/<id>.png"); replaces any earlier bytes. */
  put(key: string, bytes: Buffer): Promise<void>;
  /** The bytes, or null when the key does not exist. */
  get(key: string): Promise<Buffer | null>;
  /** Remove a key; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Every stored key, for the sweeper to find bytes whose record is gone. */
  keys(): AsyncIterable<string>;
}
