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
    if (!isValidKey(presentedKey(request))) throw errors.unauthorized();
  };
}
