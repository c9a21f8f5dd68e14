import type { FastifyRequest } from 'fastify';
import { compareVersions, isSupportedVersion, isV1Version, versionHasRoute, type ApiRoute } from '../contract/api-versions.ts';
import { errors } from '../contract/errors.ts';

/** Rejects a missing, unknown or too old api-version before the body is read. */
export function apiVersionHook(route: { apiVersion: ApiRoute | 'v1' | null }) {
  return async function checkApiVersion(request: FastifyRequest): Promise<void> {
    if (route.apiVersion === null) return;
    const version = apiVersionOf(request);
    if (route.apiVersion === 'v1') {
      if (!isV1Version(version) && !isSupportedVersion(version!)) throw errors.apiVersionNotSupported();
      return;
    }
    if (version === undefined) throw errors.missingApiVersion();
    if (!isSupportedVersion(version)) throw errors.apiVersionNotSupported();
    if (!versionHasRoute(version, route.apiVersion)) throw errors.resourceNotFound();
  };
}

export function apiVersionOf(request: FastifyRequest): string | undefined {
  const value = (request.query as Record<string, unknown>)['api-version'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Models that arrived after a route did need a newer version than the route itself (gpt-image-1). */
export function requireModelVersion(request: FastifyRequest, model: string, minimum: string): void {
  const version = apiVersionOf(request);
  if (version && !isV1Version(version) && compareVersions(version, minimum) < 0) {
    throw errors.modelNeedsNewerApiVersion(model, minimum);
  }
}
