/**
 * BlobStore in an S3-compatible bucket (AWS S3, Ceph radosgw, MinIO …), for several easel nodes
 * sharing one set of image bytes (docs/scale-out.md, "Images in S3"). Keys are object keys as they
 * are ("images/<id>.png", "transient/…"). Credentials come from the AWS SDK's default chain
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role …).
 */
import type { Readable } from 'node:stream';

import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

import {
  type BlobPage,
  type BlobPresigning,
  type BlobStore,
  DEFAULT_LIST_LIMIT,
  type ListOptions,
  type OpenedBlob,
  StorageUnavailableError,
} from './blob-store.ts';
import { type DirectPut, directPut } from './s3-direct-put.ts';

export interface S3BlobStoreOptions {
  /** The bucket; created at open when missing. */
  bucket: string;
  /** e.g. http://127.0.0.1:7480 for radosgw or MinIO; omitted: AWS S3 of `region`. */
  endpoint?: string;
  /** Default us-east-1 (what radosgw and MinIO accept unless configured otherwise). */
  region?: string;
  /** Path-style URLs (endpoint/bucket/key) instead of bucket.endpoint/key; most self-hosted servers need it. */
  forcePathStyle?: boolean;
  /**
   * Where clients reach the bucket, when it differs from `endpoint` (nodes on an internal address,
   * clients through a public one): presigned URLs are signed for this host. Default: `endpoint`.
   */
  publicEndpoint?: string;
  /** Explicit credentials instead of the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Milliseconds to establish a connection; default 3000. */
  connectionTimeoutMs?: number;
  /** Milliseconds from sending a request to the answer's headers; default 30000. */
  requestTimeoutMs?: number;
  /** Milliseconds a connection may sit idle mid-request or mid-body before it fails; default 30000. */
  socketTimeoutMs?: number;
  /** Tries per request, the first included (the SDK's retry strategy); default 3. */
  maxAttempts?: number;
  /** Unix seconds, for presigned URLs; injectable for tests. */
  now?: () => number;
}

/** SigV4 presigned URLs live at most 7 days. */
export const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

export class S3BlobStore implements BlobStore, BlobPresigning {
  readonly bucket: string;
  /** Where the bucket is, for messages: the endpoint, or "AWS S3 (<region>)". */
  readonly location: string;
  readonly #client: S3Client;
  readonly #presigner: S3Client;
  readonly #now: () => number;
  /** Uploads, past the SDK's middleware (s3-direct-put.ts); set by open(). */
  #put!: DirectPut;

  /**
   * Connects, checks the credentials and creates the bucket if it is missing. Fails with a
   * StorageUnavailableError naming the endpoint and bucket when the endpoint cannot be reached or
   * refuses the credentials.
   */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const store = new S3BlobStore(options);
    try {
      await store.#ensureBucket();
      store.#put = await directPut(store.#client, store.bucket).catch((error: unknown) => {
        throw store.#unavailable('open', null, error);
      });
      return store;
    } catch (error) {
      store.close();
      throw error;
    }
  }

  private constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    const region = options.region ?? 'us-east-1';
    this.location = options.endpoint ?? `AWS S3 (${region})`;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    const config: S3ClientConfig = {
      region,
      forcePathStyle: options.forcePathStyle ?? false,
      // The SDK sends CRC checksums with every upload and checks them on downloads by default; S3
      // servers that predate those headers (radosgw before Ceph 19, older MinIO) refuse such uploads.
      // Checksums then go only where the API requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: options.maxAttempts ?? 3,
      // Resolve each command's middleware stack once rather than at every request: this store never
      // changes a stack after the first request, and a small upload costs ~0.5 ms less CPU (measured
      // against radosgw on 2 vCPUs; docs/scale-out.md, "Measured").
      cacheMiddleware: true,
      // Without limits a bucket that stops answering would hold requests open forever.
      requestHandler: {
        connectionTimeout: options.connectionTimeoutMs ?? 3000,
        requestTimeout: options.requestTimeoutMs ?? 30_000,
        throwOnRequestTimeout: true,
        socketTimeout: options.socketTimeoutMs ?? 30_000,
      },
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    };
    // On Node 20 the SDK warns once per process, eight lines on stderr amid the JSON log, that its
    // releases after January 2027 need Node 22. easel pins the SDK's version (package-lock.json), so
    // the warning is about releases easel does not install; the README says which Node lines easel
    // supports. Setting the variable to anything but "true" brings the warning back.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.#client = new S3Client(config);
    // Presigning is local computation; a second client only when the URLs name another host.
    const publicEndpoint = options.publicEndpoint;
    this.#presigner =
      publicEndpoint === undefined || publicEndpoint === options.endpoint
        ? this.#client
        : new S3Client({ ...config, endpoint: publicEndpoint });
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    await this.#send('write', key, () => this.#put(key, bytes, contentTypeOfKey(key)));
  }

  async get(key: string): Promise<Buffer | null> {
    const opened = await this.open(key);
    if (!opened) return null;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of opened.stream) chunks.push(chunk as Buffer);
    } catch (error) {
      throw this.#unavailable('read', key, error);
    }
    return Buffer.concat(chunks);
  }

  async open(key: string): Promise<OpenedBlob | null> {
    try {
      const answer = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      // In Node the SDK's body is the HTTP response (an IncomingMessage): destroying it, as Fastify
      // does when the client goes away, closes the connection to the bucket.
      const stream = answer.Body as Readable;
      return { stream, size: answer.ContentLength ?? 0 };
    } catch (error) {
      if (isMissingKey(error)) return null;
      throw this.#unavailable('read', key, error);
    }
  }

  async delete(key: string): Promise<void> {
    // S3 answers 204 for a key that does not exist.
    await this.#send('delete', key, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    );
  }

  async list(prefix: string, options: ListOptions = {}): Promise<BlobPage> {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('The page limit must be a positive integer.');
    const answer = await this.#send('list', prefix, () =>
      this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          // S3 pages at most 1000 keys; a larger limit gets 1000 and a `next`.
          MaxKeys: Math.min(limit, DEFAULT_LIST_LIMIT),
          ...(options.startAfter !== undefined && options.startAfter !== '' ? { StartAfter: options.startAfter } : {}),
        }),
      ),
    );
    const entries = (answer.Contents ?? [])
      .filter((object) => object.Key !== undefined)
      .map((object) => ({
        key: object.Key!,
        modified: Math.floor((object.LastModified?.getTime() ?? 0) / 1000),
      }));
    const last = entries.at(-1);
    return { entries, next: answer.IsTruncated === true && last ? last.key : null };
  }

  /**
   * A SigV4 presigned GET, signed now and valid until `expiresUnix` (capped at 7 days, SigV4's
   * limit). No request is sent: it works while the bucket is down, and the client learns of an
   * outage from the bucket itself.
   */
  async presignedGetUrl(
    key: string,
    expiresUnix: number,
    options: { contentType?: string; filename?: string } = {},
  ): Promise<string> {
    const now = this.#now();
    // An already-expired image gets a link that expires at once rather than an error.
    const expiresIn = Math.min(MAX_PRESIGNED_SECONDS, Math.max(1, Math.floor(expiresUnix) - now));
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(options.contentType !== undefined ? { ResponseContentType: options.contentType } : {}),
      ...(options.filename !== undefined
        ? { ResponseContentDisposition: `inline; filename="${options.filename.replace(/["\\\r\n]/g, '_')}"` }
        : {}),
    });
    try {
      return await getSignedUrl(this.#presigner, command, { expiresIn, signingDate: new Date(now * 1000) });
    } catch (error) {
      // Only the credentials can fail here (a provider in the default chain that cannot answer).
      throw this.#unavailable('sign a link for', key, error);
    }
  }

  /** Closes the SDK's idle connections. */
  close(): void {
    this.#client.destroy();
    if (this.#presigner !== this.#client) this.#presigner.destroy();
  }

  async #ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (error) {
      if (statusOf(error) !== 404) throw this.#unavailable('open', null, error);
    }
    const region = await this.#client.config.region();
    try {
      await this.#client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is S3's default location and must not be named (S3 refuses it as a constraint).
          ...(region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as never } } : {}),
        }),
      );
    } catch (error) {
      // Another node created it a moment ago.
      if (nameOf(error) === 'BucketAlreadyOwnedByYou') return;
      throw this.#unavailable('create', null, error);
    }
  }

  async #send<T>(action: string, key: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.#unavailable(action, key, error);
    }
  }

  /** One message shape for every failure: what was tried, on which bucket where, and why. */
  #unavailable(action: string, key: string | null, error: unknown): StorageUnavailableError {
    const what = key === null ? `the bucket "${this.bucket}"` : `"${key}" in bucket "${this.bucket}"`;
    return new StorageUnavailableError(`Could not ${action} ${what} at ${this.location}: ${describe(error)}`, {
      cause: error,
    });
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string | undefined {
  return (error as { name?: string }).name;
}

function isMissingKey(error: unknown): boolean {
  return nameOf(error) === 'NoSuchKey' || (statusOf(error) === 404 && nameOf(error) !== 'NoSuchBucket');
}

/** Why a request failed, in words an operator can act on. */
function describe(error: unknown): string {
  const status = statusOf(error);
  const name = nameOf(error) ?? 'Error';
  const code = (error as { code?: string }).code;
  if (status === 401 || status === 403 || /^(InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied)$/.test(name)) {
    return `the credentials were refused (${answer(status, name)}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and the bucket's permissions`;
  }
  if (status !== undefined) return `the server answered ${answer(status, name)}`;
  if (name === 'TimeoutError') return `no answer in time (${(error as Error).message})`;
  if (code !== undefined) return `unreachable (${code})`;
  return `unreachable (${name}: ${(error as Error).message ?? String(error)})`;
}

/** "HTTP 403 AccessDenied"; a HEAD answer has no body, so no error name ("Unknown" or the status). */
function answer(status: number | undefined, name: string): string {
  const named = name !== 'Unknown' && name !== String(status) && name !== 'Error';
  return `HTTP ${status ?? '?'}${named ? ` ${name}` : ''}`;
}

/** The Content-Type stored with the object, so a presigned download says what it is. */
function contentTypeOfKey(key: string): string {
  const extension = /\.([a-z0-9]+)$/i.exec(key)?.[1]?.toLowerCase();
  switch (extension) {
    case 'png':
      return 'image/png';
    case 'jpg':
    case 'jpeg':
      return 'image/jpeg';
    case 'webp':
      return 'image/webp';
    default:
      return 'application/octet-stream';
  }
}
