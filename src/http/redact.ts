/**
 * Credentials that arrive in a query string must not reach the log. Clients put keys there by
 * mistake (`?api-key=`, `?subscription-key=`), signed links carry `sig`, and OAuth-style callers
 * send `access_token` or `code`; every such value is replaced, whatever its case or spelling.
 */

/**
 * A parameter name that names a credential: any name containing key, token, secret, password,
 * signature, credential or session, and the short ones (sig, code, pwd, auth) as whole words.
 * Matching more than needed only hides a harmless value.
 */
const CREDENTIAL_NAME =
  /key|token|secret|passw|signature|credential|session|(^|[-_.])(sig|code|pwd|auth|authorization)($|[-_.])/i;

export const REDACTED = '[redacted]';

export function isCredentialName(name: string): boolean {
  return CREDENTIAL_NAME.test(decodeLoosely(name));
}

/** The URL as sent, with the value of every credential-like query parameter replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return isCredentialName(name) && eq >= 0 ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return `${url.slice(0, q + 1)}${query}`;
}

/** `api%2Dkey` and `api+key` are still `api-key`; a broken escape is read as it stands. */
function decodeLoosely(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
