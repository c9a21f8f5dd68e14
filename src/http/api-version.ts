import type { FastifyRequest } from 'fastify';

import {
  type ApiRoute,
  compareVersions,
  isSupportedVersion,
  isV1Version,
  KNOWN_API_VERSIONS,
  versionHasRoute,
} from '../contract/api-versions.ts';
import { errors } from '../contract/errors.ts';

/** Rejects a missing, unknown or too old api-version before the body is read. */
export function apiVersionHook(route: { apiVersion: ApiRoute | 'v1' | null }) {
  return async function checkApiVersion(request: FastifyRequest): Promise<void> {
    if (route.apiVersion === null) return;
    const version = apiVersionOf(request);
    if (route.apiVersion === 'v1') {
      if (!isV1Version(version) && !isSupportedVersion(version!))
        throw errors.apiVersionNotSupported(version!, supportedOn('v1'));
      return;
    }
    if (version === undefined) throw errors.missingApiVersion();
    if (!isSupportedVersion(version)) throw errors.apiVersionNotSupported(version, supportedOn(route.apiVersion));
    if (!versionHasRoute(version, route.apiVersion)) {
      throw errors.resourceNotFound(
        `api-version ${version} has no ${route.apiVersion} route; it exists in ${supportedOn(route.apiVersion)}`,
      );
    }
  };
}

/** The versions a route takes, in a line short enough for a message: first–last, or a list. */
export function supportedOn(route: ApiRoute | 'v1'): string {
  if (route === 'v1') return `preview, latest, or none (the v1 surface), or ${supportedOn('generations')}`;
  const versions = KNOWN_API_VERSIONS.filter((v) => versionHasRoute(v, route));
  const newer = route === 'operations' ? '' : ' and any newer dated version';
  return `${versions[0]} to ${versions[versions.length - 1]}${newer} (GA: ${versions.filter((v) => !v.endsWith('-preview')).join(', ') || 'none'})`;
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
