import type { FastifyReply, FastifyRequest } from 'fastify';

import { errors } from '../../contract/errors.ts';
import { imageIdOfKey } from '../../storage/index.ts';

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
  if (verdict === 'expired') throw errors.imageLinkExpired();
  if (verdict !== 'ok') throw errors.imageLinkInvalid();

  const key = path.slice('/files/'.length);
  const id = imageIdOfKey(key);
  const record = id ? await services.store.getImage(id) : null;
  const bytes = record && record.key === key ? await services.blobs.get(key) : null;
  if (!record || !bytes) throw errors.imageNotFound();
  return reply
    .type(record.contentType)
    .header('cache-control', `private, max-age=${Math.max(0, record.expires - Math.floor(Date.now() / 1000))}`)
    .header('content-disposition', `inline; filename="${key.slice('images/'.length)}"`)
    .send(bytes);
}
