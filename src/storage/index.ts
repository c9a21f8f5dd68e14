// The public face of storage/: bytes by key. The blob-store port and its file adapter, the keys of
// image bytes, URL signing, the expiry sweeper and the data directory's lock. Pixels and file
// formats are codec/'s. Other folders import from here, not from the files behind it.
export type { BlobStore } from './blob-store.ts';
export { DataDirInUseError, DataDirLock } from './data-dir-lock.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export { imageIdOfKey, imageKey } from './image-keys.ts';
export type { VerifyResult } from './signing.ts';
export { loadOrCreateSecret, SECRET_FILE_NAME, UrlSigner } from './signing.ts';
export type { BlobAges, SweepCounts, SweeperLog, SweeperOptions } from './sweeper.ts';
export { DEFAULT_ORPHAN_GRACE_SECONDS, Sweeper } from './sweeper.ts';
