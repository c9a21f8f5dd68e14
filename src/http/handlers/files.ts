import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/errors.ts';
import { imageIdOfKey } from '../../storage/index.ts';

const forbidden = (message: string) => new ApiError({ status: 403, code: 'AuthenticationFailed', message });

/**
 * GET /files/images/{name}?se=…&sig=… — the signed 24-hour image link. No key is needed (the
 * signature is the credential, as with Azure's blob SAS URLs); a tampered or expired link is a 403
 * and serves nothing.
 */
export async function download(request: FastifyRequest, reply: FastifyReply) {
  const services = request.server.services;
  const path = request.url.split('?')[0]!;
  const query = request.query as { se?: string; sig?: string };
  const verdict = services.signer.verify(path, query, Math.floor(Date.now() / 1000));
  if (verdict === 'expired') throw forbidden('This image link has expired.');
  if (verdict !== 'ok') throw forbidden('This image link is not valid: its signature does not match.');

  const key = path.slice('/files/'.length);
  const id = imageIdOfKey(key);
  const record = id ? await services.store.getImage(id) : null;
  const bytes = record && record.key === key ? await services.blobs.get(key) : null;
  if (!record || !bytes) throw new ApiError({ status: 404, code: 'BlobNotFound', message: 'The image no longer exists.' });
  return reply
    .type(record.contentType)
    .header('cache-control', `private, max-age=${Math.max(0, record.expires - Math.floor(Date.now() / 1000))}`)
    .header('content-disposition', `inline; filename="${key.slice('images/'.length)}"`)
    .send(bytes);
}
