import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { ApiError, errors } from '../contract/errors.ts';
import { isDatabaseUnavailable } from '../jobs/database-errors.ts';
import { JobFailedError, QueueFullError } from '../jobs/job-contract.ts';
import { StorageUnavailableError } from '../storage/index.ts';

/** Map anything thrown while handling a request to one catalogue error. */
export function toApiError(
  error: unknown,
  request: FastifyRequest,
  limits: { maxJsonBodyBytes: number; maxImageBytes: number },
): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof QueueFullError) return errors.tooManyRequests(error.retryAfterSeconds);
  // A job's outcome arrives as the catalogue error the running side chose (jobs/job-failure.ts).
  if (error instanceof JobFailedError) {
    const { status, error: wire, retryAfterSeconds } = error.failure;
    return errors.fromWire(status, wire, retryAfterSeconds);
  }
  // The blob store failing on this side (reading a result, serving /files/).
  if (error instanceof StorageUnavailableError) return errors.storageUnavailable(request.id);
  const e = error as Partial<FastifyError> & Error;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.payloadTooLarge(null, limits.maxJsonBodyBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType(
        request.routeOptions.url?.endsWith('/edits') ? 'multipart/form-data' : 'application/json',
        request.headers['content-type'],
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.invalidJson('the body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.invalidJson(); // Fastify's text only repeats that the body is not JSON
    case 'FST_REQ_FILE_TOO_LARGE':
      return errors.payloadTooLarge('image', limits.maxImageBytes);
    case 'FST_FILES_LIMIT':
      return errors.invalidParameter('image', 'Too many files: an edit takes at most 16 images and one mask.');
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return errors.invalidParameter(null, 'Too many form fields.');
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return errors.unsupportedMediaType('multipart/form-data', request.headers['content-type']);
    case 'FST_PROTO_VIOLATION':
      return errors.invalidParameter('__proto__', 'Form field names must not be __proto__.');
  }
  // Fastify's JSON parser rejects bad JSON with a SyntaxError carrying status 400.
  if (error instanceof SyntaxError && e.statusCode === 400) return errors.invalidJson(e.message);
  // Busboy: a body that is not well-formed multipart.
  if (
    /Unexpected end of (form|multipart data)|Malformed part header|Multipart: Boundary not found/i.test(e.message ?? '')
  ) {
    return errors.invalidParameter('image', `The multipart body is malformed: ${e.message}`);
  }
  // A client that went away mid-body, or a body shorter than its Content-Length.
  if (e.code === 'ECONNRESET' || e.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return errors.requestAborted();
  // Fastify's other refusals of the request itself carry a 4xx status: the client's fault, not ours.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 && e.code?.startsWith('FST_')) {
    return errors.requestRejected(e.statusCode, e.message);
  }
  // The operation database (scale-out: PostgreSQL) refused or dropped the connection.
  if (isDatabaseUnavailable(error)) return errors.databaseUnavailable(request.id);
  return errors.internal(request.id);
}

export function sendApiError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.reason) reply.header(REASON_HEADER, headerSafe(error.reason));
  return reply.code(error.status).headers(error.headers).type('application/json').send(error.toWire());
}

/** Why easel refused, where Azure's body has no room for it (see ApiError.reason). */
export const REASON_HEADER = 'x-easel-error-reason';

/** A header value carries printable ASCII only; the reason may quote a client's (any) text. */
function headerSafe(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 300 ? `${clean.slice(0, 297)}...` : clean;
}
