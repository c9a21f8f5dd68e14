/**
 * Which `api-version` values easel accepts, and on which routes. Azure requires the query parameter
 * on every deployment and operation route, answers 400 "API version not supported" for versions it
 * does not know, and 404 "Resource not found" where a route does not exist in that version
 * (docs/azure-api.md, "Routes and api-versions" and "Errors").
 */

/** Versions published up to the newest one easel knows; anything newer is accepted too. */
export const KNOWN_API_VERSIONS: readonly string[] = [
  '2023-06-01-preview',
  '2023-07-01-preview',
  '2023-08-01-preview',
  '2023-09-01-preview',
  '2023-10-01-preview',
  '2023-12-01-preview',
  '2024-02-01',
  '2024-02-15-preview',
  '2024-03-01-preview',
  '2024-04-01-preview',
  '2024-05-01-preview',
  '2024-06-01',
  '2024-07-01-preview',
  '2024-08-01-preview',
  '2024-09-01-preview',
  '2024-10-01-preview',
  '2024-10-21',
  '2024-12-01-preview',
  '2025-01-01-preview',
  '2025-02-01-preview',
  '2025-03-01-preview',
  '2025-04-01-preview',
];

const NEWEST_KNOWN = KNOWN_API_VERSIONS[KNOWN_API_VERSIONS.length - 1]!;
const VERSION_RE = /^(\d{4}-\d{2}-\d{2})(-preview)?$/;

/** DALL-E 2 `:submit` and operations existed from 2023-06-01-preview until 2023-12-01-preview. */
const OPERATIONS_UNTIL = '2023-12-01-preview';
/** Edits appeared in 2025-04-01-preview (older versions answer 404). */
const EDITS_FROM = '2025-04-01-preview';

export type ApiRoute = 'generations' | 'edits' | 'operations';

/** Compare two versions by date; a preview sorts before the GA of the same date. */
export function compareVersions(a: string, b: string): number {
  const [, da = '', pa] = VERSION_RE.exec(a) ?? [];
  const [, db = '', pb] = VERSION_RE.exec(b) ?? [];
  if (da !== db) return da < db ? -1 : 1;
  return (pa ? 0 : 1) - (pb ? 0 : 1);
}

/** Whether easel knows this version at all. */
export function isSupportedVersion(version: string): boolean {
  if (KNOWN_API_VERSIONS.includes(version)) return true;
  // Azure publishes new versions every few months; accept well-formed ones newer than our list.
  return VERSION_RE.test(version) && compareVersions(version, NEWEST_KNOWN) > 0;
}

/** Whether a supported version has this route. */
export function versionHasRoute(version: string, route: ApiRoute): boolean {
  switch (route) {
    case 'operations':
      return compareVersions(version, OPERATIONS_UNTIL) < 0;
    case 'edits':
      return compareVersions(version, EDITS_FROM) >= 0;
    case 'generations':
      return compareVersions(version, OPERATIONS_UNTIL) >= 0;
  }
}

/** The v1 surface takes `preview`, `latest`, or no api-version at all. */
export function isV1Version(version: string | undefined): boolean {
  return version === undefined || version === 'preview' || version === 'latest' || version === 'v1';
}
