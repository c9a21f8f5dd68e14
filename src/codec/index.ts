// The public face of codec/: the one place where pixels become PNG/JPEG/WebP bytes and uploads
// become pixels (sharp): encoding, header probes and decoding of uploads, resizing, and an edit's
// uploads between the request and the job. It knows images, not where they are kept (storage/) or
// who asked for them (http/, jobs/). Other folders import from here, not from the files behind it.
export type { EditUploads, PendingUpload } from './edit-uploads.ts';
export { decodedPixelsOf, decodeEditUploads, probeEditUploads } from './edit-uploads.ts';
export type { DecodedUpload, DecodeUploadOptions, ProbedUpload, UploadFormat } from './encoding.ts';
export {
  contentTypeOf,
  decodeUpload,
  encodeImage,
  extensionOf,
  probeUpload,
  resizeTo,
  sniffImageFormat,
} from './encoding.ts';
