/**
 * Which URL a client gets for a stored image: easel's own signed /files/ link (the bytes stream
 * through easel), or, with an S3 bucket, a presigned URL of the object (the client downloads from the
 * bucket and easel serves no bytes). Either way the link stops working at the image's expiry, as
 * Azure's 24-hour blob SAS URLs do (docs/scale-out.md, "Images in S3").
 */
import type { BlobPresigning } from './blob-store.ts';
import type { UrlSigner } from './signing.ts';

/** What a link needs of an image record. */
export interface LinkedImage {
  /** BlobStore key ("images/<id>.png"). */
  key: string;
  /** Unix seconds; the link stops working then. */
  expires: number;
}

export interface ImageLinks {
  /** An absolute URL; `base` is this server's public base URL (scheme and host, no trailing slash). */
  urlOf(base: string, image: LinkedImage): Promise<string>;
}

/** /files/<key>?se=…&sig=…, served by GET /files/ (http/handlers/files.ts). */
export class SignedFileLinks implements ImageLinks {
  readonly #signer: UrlSigner;

  constructor(signer: UrlSigner) {
    this.#signer = signer;
  }

  /** The path the file route verifies is exactly the one signed here. */
  static pathOf(key: string): string {
    return `/files/${key}`;
  }

  async urlOf(base: string, image: LinkedImage): Promise<string> {
    const path = SignedFileLinks.pathOf(image.key);
    return `${base}${path}?${this.#signer.sign(path, image.expires)}`;
  }
}

/** A presigned GET of the object itself, expiring with the image (S3BlobStore). */
export class PresignedImageLinks implements ImageLinks {
  readonly #blobs: BlobPresigning;

  constructor(blobs: BlobPresigning) {
    this.#blobs = blobs;
  }

  async urlOf(_base: string, image: LinkedImage): Promise<string> {
    return this.#blobs.presignedGetUrl(image.key, image.expires, { filename: image.key.split('/').pop()! });
  }
}
