// The public face of storage/: the blob-store port and its file adapter, encoding, URL signing
// and the expiry sweeper. Other folders import from here, not from the files behind it.
export type { BlobStore } from './blob-store.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export {
  contentTypeOf,
  decodeUpload,
  encodeImage,
  extensionOf,
  imageIdOfKey,
  imageKey,
  resizeTo,
  sniffImageFormat,
} from './encoding.ts';
export type { DecodedUpload, DecodeUploadOptions, UploadFormat } from './encoding.ts';
export { loadOrCreateSecret, SECRET_FILE_NAME, UrlSigner } from './signing.ts';
export type { VerifyResult } from './signing.ts';
export { DEFAULT_ORPHAN_GRACE_SECONDS, Sweeper } from './sweeper.ts';
export type { BlobAges, SweepCounts, SweeperLog, SweeperOptions } from './sweeper.ts';
