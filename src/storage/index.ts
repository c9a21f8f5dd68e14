// The public face of storage/: bytes by key. The blob-store port, its file and S3 adapters, the keys
// of image bytes, image links (signed or presigned), URL signing, the expiry sweeper and the data
// directory's lock. Pixels and file formats are codec/'s. Other folders import from here, not from
// the files behind it.
export type { BlobEntry, BlobPage, BlobPresigning, BlobStore, ListOptions, OpenedBlob } from './blob-store.ts';
export { DEFAULT_LIST_LIMIT, listAll, StorageUnavailableError } from './blob-store.ts';
export { DataDirInUseError, DataDirLock } from './data-dir-lock.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export { imageIdOfKey, imageKey } from './image-keys.ts';
export type { ImageLinks, LinkedImage } from './image-links.ts';
export { PresignedImageLinks, SignedFileLinks } from './image-links.ts';
export { openS3BlobStore } from './open-s3.ts';
export type { S3BlobStore, S3BlobStoreOptions } from './s3-blob-store.ts';
export type { VerifyResult } from './signing.ts';
export { loadOrCreateSecret, SECRET_FILE_NAME, UrlSigner } from './signing.ts';
export type { SweepCounts, SweeperLog, SweeperOptions } from './sweeper.ts';
export {
  DEFAULT_ORPHAN_GRACE_SECONDS,
  DEFAULT_SWEEP_PAGE_SIZE,
  DEFAULT_TRANSIENT_MAX_AGE_SECONDS,
  Sweeper,
} from './sweeper.ts';
