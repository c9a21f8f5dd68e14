import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Security headers, set by one onRequest hook (so 404s and errors carry them too).
 *
 * Written here rather than taken from @fastify/helmet: helmet's defaults are made for a website,
 * and half of them would have to be switched off for this server (Cross-Origin-Resource-Policy
 * same-origin and Cross-Origin-Embedder-Policy would stop web apps on other origins from showing
 * the signed image links, which Azure serves to any origin; HSTS means nothing on a local http
 * port), leaving four constant headers, fewer lines than the configuration that would turn the
 * rest off, and no dependency.
 *
 * - Every answer: `X-Content-Type-Options: nosniff`, so an image download or a JSON body is never
 *   read by a browser as something else (script, HTML).
 * - The playground (its page, scripts, stylesheet, config and icon): it keeps the API key in
 *   localStorage, so it gets a strict Content-Security-Policy (only its own scripts, no inline
 *   script or style, no plugins, no <base>), `frame-ancestors 'none'` with X-Frame-Options for
 *   browsers that predate it (no clickjacking of the key field), no Referer, and its own browsing
 *   context group (COOP).
 */

/** The routes whose answers are the playground's (Fastify route patterns). */
const PLAYGROUND_ROUTES: ReadonlySet<string> = new Set([
  '/',
  '/playground/config.json',
  '/playground/:file',
  '/favicon.ico',
]);

/**
 * The playground's policy. Images come from this server (signed /files/ links) or, when
 * EASEL_PUBLIC_URL names another origin, from there, or from the bucket of presigned image links
 * (`imageOrigin`); gpt-image-1's base64 images are shown as blob: URLs, and data: is allowed for
 * images only. Everything else the page loads or calls is its own
 * origin; the page uses no fonts, frames, workers or inline code.
 */
export function playgroundPolicy(publicUrl: string | null, imageOrigin: string | null = null): string {
  const images = ["'self'", 'data:', 'blob:'];
  if (publicUrl) images.push(new URL(publicUrl).origin);
  if (imageOrigin && !images.includes(imageOrigin)) images.push(imageOrigin);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${images.join(' ')}`,
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The onRequest hook that sets the headers above. */
export function securityHeaders(publicUrl: string | null, imageOrigin: string | null = null) {
  const policy = playgroundPolicy(publicUrl, imageOrigin);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('x-content-type-options', 'nosniff');
    if (!PLAYGROUND_ROUTES.has(request.routeOptions.url ?? '')) return;
    reply
      .header('content-security-policy', policy)
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin');
  };
}
