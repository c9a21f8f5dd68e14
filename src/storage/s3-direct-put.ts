/**
 * PutObject sent with the S3 client's own parts but past its middleware stack. Every image a worker
 * makes is uploaded on the way from the job's end to its answer, and for an image of tens of kilobytes
 * the SDK's per-request work (a stack of some twenty middleware steps: endpoint rules, serialisation,
 * user agent, checksum and retry bookkeeping, then signing and sending) took 2.4 ms of CPU against
 * 0.9 ms for the same signed request sent directly (43 KB to radosgw on 2 vCPUs); on a worker that
 * shares its cores, 1–2 ms of every answer (docs/scale-out.md, "Uploads past the SDK's middleware").
 *
 * What is the SDK's still: the object's URL (resolved once for the bucket, from a presigned URL, so
 * path-style and virtual-hosted addressing, custom endpoints and regions follow the client's
 * configuration), the signer (credentials from the client's chain, region, its clock-skew offset), the
 * HTTP handler (its connection pool and timeouts) and the retry strategy (attempts, back-off, retry
 * quota). What is left out, because easel's uploads do not need it: flexible checksums (easel asks for
 * them only where the API requires them, and PutObject does not), `Expect: 100-continue` (the SDK sends it
 * only from 2 MB), S3 Express sessions, and following a bucket's region redirect.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';

/** An answer of S3 other than 2xx, shaped as the SDK's service errors (name, $metadata.httpStatusCode). */
export class S3ResponseError extends Error {
  readonly $metadata: { httpStatusCode: number };

  constructor(status: number, code: string | undefined, message: string | undefined) {
    super(message ?? `HTTP ${status}`);
    // The SDK names a service error by S3's code, or "Unknown" when the answer has none.
    this.name = code ?? 'Unknown';
    this.$metadata = { httpStatusCode: status };
  }
}

/** What the client's configuration holds for these parts (the SDK types them loosely). */
interface ClientParts {
  signer: (authScheme?: object) => Promise<{ sign(request: HttpRequest, options?: object): Promise<HttpRequest> }>;
  requestHandler: { handle(request: HttpRequest): Promise<{ response: HttpResponse }> };
  retryStrategy: () => Promise<RetryStrategy>;
  systemClockOffset?: number;
}

interface HttpRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Buffer;
}

interface HttpResponse {
  statusCode: number;
  body: AsyncIterable<Buffer>;
}

interface RetryToken {
  getRetryDelay(): number;
}

type ErrorType = 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';

interface RetryStrategy {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(token: RetryToken, error: { errorType: ErrorType; error?: unknown }): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}

export type DirectPut = (key: string, bytes: Buffer, contentType: string) => Promise<void>;

/** A PutObject for `bucket` sent through `client`'s own signer, handler and retry strategy (see the file header). */
export async function directPut(client: S3Client, bucket: string): Promise<DirectPut> {
  const parts = client.config as unknown as ClientParts;
  // The bucket's base URL as the SDK resolves it: a URL presigned for the key "k", cut before the key.
  const probe = new URL(
    await getSignedUrl(client, new PutObjectCommand({ Bucket: bucket, Key: 'k' }), { expiresIn: 60 }),
  );
  const basePath = probe.pathname.slice(0, -'k'.length);
  const signer = await parts.signer();
  const retryStrategy = await parts.retryStrategy();

  const attempt = async (key: string, bytes: Buffer, contentType: string) => {
    const request: HttpRequest = {
      method: 'PUT',
      protocol: probe.protocol,
      hostname: probe.hostname,
      ...(probe.port !== '' ? { port: Number(probe.port) } : {}),
      path: basePath + encodeKey(key),
      query: {},
      headers: {
        host: probe.host,
        'content-type': contentType,
        'content-length': String(bytes.length),
        'x-amz-content-sha256': createHash('sha256').update(bytes).digest('hex'),
      },
      body: bytes,
    };
    const signed = await signer.sign(request, { signingDate: new Date(Date.now() + (parts.systemClockOffset ?? 0)) });
    const { response } = await parts.requestHandler.handle(signed);
    // Read to the end either way, so that the connection goes back to the pool.
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk);
    if (response.statusCode >= 200 && response.statusCode < 300) return;
    const xml = Buffer.concat(chunks).toString('utf8');
    throw new S3ResponseError(response.statusCode, tag(xml, 'Code'), tag(xml, 'Message'));
  };

  return async (key, bytes, contentType) => {
    let token = await retryStrategy.acquireInitialRetryToken('s3:PutObject');
    for (;;) {
      try {
        await attempt(key, bytes, contentType);
        retryStrategy.recordSuccess(token);
        return;
      } catch (error) {
        try {
          token = await retryStrategy.refreshRetryTokenForRetry(token, { errorType: errorTypeOf(error), error });
        } catch {
          throw error; // no attempt left, or not worth one: this failure is the answer
        }
        // The strategy may wait itself before it hands the token over (the SDK's does); if not, the delay is here.
        const delay = token.getRetryDelay();
        if (delay > 0) await sleep(delay);
      }
    }
  };
}

/**
 * The key as a URL path: each segment percent-encoded as the SDK does (RFC 3986's unreserved
 * characters stay, "!'()*" are encoded too), the slashes between them kept. The signer takes the path
 * as it is (S3 signs it without encoding it again).
 */
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

/**
 * How the SDK's retry middleware weighs a failure, with the SDK's own classifiers (timeouts, dropped or
 * refused connections and 500/502/503/504 are transient; 429 and S3's "slow down" codes throttling).
 */
function errorTypeOf(error: unknown): ErrorType {
  const e = error as Parameters<typeof isTransientError>[0];
  if (isThrottlingError(e)) return 'THROTTLING';
  if (isTransientError(e)) return 'TRANSIENT';
  return isServerError(e) ? 'SERVER_ERROR' : 'CLIENT_ERROR';
}

/** The text of the first <name> element of S3's XML error, unescaped; undefined when there is none. */
function tag(xml: string, name: string): string | undefined {
  const text = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  return text?.replace(/&(lt|gt|quot|apos|amp);/g, (_, entity: string) => ENTITIES[entity]!);
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
