import type { FastifyReply, FastifyRequest } from 'fastify';

import { errors } from '../../contract/errors.ts';
import { imageIdOfKey } from '../../storage/index.ts';

/**
 * GET /files/images/{name}?se=…&sig=… — the signed 24-hour image link. No key is needed (the
 * signature is the credential, as with Azure's blob SAS URLs); a tampered or expired link is a 403
 * and serves nothing. The bytes stream from the blob store with their length, never held whole in
 * memory; Fastify destroys the stream (and so the read from the bucket) when the client goes away.
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
  const opened = record && record.key === key ? await services.blobs.open(key) : null;
  if (!record || !opened) throw errors.imageNotFound();
  return reply
    .type(record.contentType)
    .header('content-length', opened.size)
    .header('cache-control', `private, max-age=${Math.max(0, record.expires - Math.floor(Date.now() / 1000))}`)
    .header('content-disposition', `inline; filename="${key.slice('images/'.length)}"`)
    .send(opened.stream);
}
