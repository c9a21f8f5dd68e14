import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyRequest } from 'fastify';

import { errors } from '../contract/errors.ts';

/**
 * Azure accepts the key as `api-key` (any case) or as `Authorization: Bearer <key>` (the v1
 * surface and the plain OpenAI client). Old DALL-E 2 scripts send `Ocp-Apim-Subscription-Key`.
 */
export function presentedKey(request: FastifyRequest): string | null {
  const header = request.headers['api-key'] ?? request.headers['ocp-apim-subscription-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const authorization = request.headers.authorization;
  const match = typeof authorization === 'string' ? /^Bearer\s+(.+)$/i.exec(authorization.trim()) : null;
  return match ? match[1]!.trim() : null;
}

/** Compares digests, so neither the length nor the content of a key leaks through timing. */
export function createKeyCheck(keys: readonly string[]) {
  const digests = keys.map(digest);
  return function isValidKey(candidate: string | null): boolean {
    if (candidate === null) return false;
    const d = digest(candidate);
    let ok = false;
    for (const known of digests) ok = timingSafeEqual(d, known) || ok;
    return ok;
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function authHook(isValidKey: (key: string | null) => boolean) {
  return async function requireKey(request: FastifyRequest): Promise<void> {
    const key = presentedKey(request);
    if (!isValidKey(key)) throw errors.unauthorized(whyRefused(request, key));
  };
}

/** Where clients commonly put a key that neither Azure nor easel reads. */
const MISPLACED_HEADERS = ['x-api-key', 'apikey', 'api_key', 'x-functions-key', 'subscription-key'];
const MISPLACED_QUERY = /^(api[-_]?key|key|subscription-key|code)$/i;
const WHERE = "send it as the 'api-key' header or as 'Authorization: Bearer <key>'";

/**
 * Azure's 401 body is the same for every cause; this says which one it was, for the log line and
 * the x-easel-error-reason header. Never echoes the key itself.
 */
export function whyRefused(request: FastifyRequest, key: string | null): string {
  if (key !== null)
    return "the key is not one of this server's keys (EASEL_API_KEYS, or api-keys.json in the data directory)";
  const headers = request.headers;
  if (typeof headers['api-key'] === 'string' || typeof headers['ocp-apim-subscription-key'] === 'string')
    return `the api-key header is empty; ${WHERE}`;
  if (typeof headers.authorization === 'string') {
    // Not quoted: a bare key in this header would land in the log.
    return `the Authorization header is not of the form 'Bearer <key>'; ${WHERE}`;
  }
  const header = MISPLACED_HEADERS.find((name) => headers[name] !== undefined);
  if (header) return `a key was sent in the '${header}' header, which is not read; ${WHERE}`;
  const query = Object.keys((request.query ?? {}) as Record<string, unknown>).find((name) =>
    MISPLACED_QUERY.test(name),
  );
  if (query) return `a key was sent in the '${query}' query parameter, which is not read; ${WHERE}`;
  return `no key was sent; ${WHERE}`;
}
