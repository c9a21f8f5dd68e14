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
  /**
   * The origin the links point at when it is not this server (a bucket), else null: the playground's
   * content security policy must allow images from it.
   */
  readonly origin: string | null;
}

/** /files/<key>?se=…&sig=…, served by GET /files/ (http/handlers/files.ts). */
export class SignedFileLinks implements ImageLinks {
  readonly origin = null;
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
  readonly origin: string;
  readonly #blobs: BlobPresigning;

  /** Links of `blobs`; their origin is read from one presigned URL (no request is sent). */
  static async of(blobs: BlobPresigning): Promise<PresignedImageLinks> {
    const sample = await blobs.presignedGetUrl('images/origin-probe.png', Math.floor(Date.now() / 1000) + 60);
    return new PresignedImageLinks(blobs, new URL(sample).origin);
  }

  constructor(blobs: BlobPresigning, origin: string) {
    this.#blobs = blobs;
    this.origin = origin;
  }

  async urlOf(_base: string, image: LinkedImage): Promise<string> {
    return this.#blobs.presignedGetUrl(image.key, image.expires, { filename: image.key.split('/').pop()! });
  }
}
