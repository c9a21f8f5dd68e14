import { readFile } from 'node:fs/promises';

import type { FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';

import { errors } from '../../contract/errors.ts';
import { FAMILIES } from '../../contract/families.ts';

/**
 * The playground: a static page at GET / (no build step; plain HTML, CSS and JS modules under
 * src/http/playground/) and GET /playground/config.json, from which the page builds its controls.
 * The config carries the FAMILIES tables unchanged, so the page offers exactly what validation
 * accepts.
 */

const ASSETS_DIR = new URL('../playground/', import.meta.url);

/** The only files served: a fixed list, so no path from the URL ever reaches the file system. */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'controls.js': 'text/javascript; charset=utf-8',
  'gallery.js': 'text/javascript; charset=utf-8',
  'mask.js': 'text/javascript; charset=utf-8',
  'filters.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** The icon changes only with a new release: browsers may keep it a day without asking. */
const ICON_CACHE = 'public, max-age=86400';

/** The api-versions the page calls: edits need 2025-04-01-preview, `:submit` ended before 2023-12-01-preview. */
export const PLAYGROUND_API_VERSIONS = { images: '2025-04-01-preview', submit: '2023-06-01-preview' } as const;

async function sendAsset(reply: FastifyReply, name: string) {
  const type = ASSETS[name];
  if (!type) throw errors.resourceNotFound();
  const body = await readFile(new URL(name, ASSETS_DIR));
  return reply
    .header('content-type', type)
    .header('cache-control', type.startsWith('image/') ? ICON_CACHE : 'no-cache')
    .send(body);
}

let faviconPng: Promise<Buffer> | null = null;

/**
 * GET /favicon.ico: what browsers ask for on any page of the server. The playground's SVG icon,
 * rendered once to a 32×32 PNG (every browser takes a PNG there), so the repository holds no binary.
 */
export async function favicon(_request: FastifyRequest, reply: FastifyReply) {
  faviconPng ??= readFile(new URL('favicon.svg', ASSETS_DIR)).then((svg) =>
    sharp(svg, { density: 144 }).resize(32, 32).png().toBuffer(),
  );
  try {
    const png = await faviconPng;
    return reply.header('content-type', 'image/png').header('cache-control', ICON_CACHE).send(png);
  } catch (error) {
    faviconPng = null; // try again on the next request rather than remember a failure
    throw error;
  }
}

/** GET / */
export async function page(_request: FastifyRequest, reply: FastifyReply) {
  return sendAsset(reply, 'index.html');
}

/** GET /playground/:file */
export async function asset(request: FastifyRequest, reply: FastifyReply) {
  const { file } = request.params as { file: string };
  return sendAsset(reply, Object.hasOwn(ASSETS, file) ? file : '');
}

/**
 * GET /playground/config.json, without a key (as /readyz, which lists the same deployments): the
 * deployments with their family and state, and each family's parameter tables from FAMILIES.
 */
export async function config(request: FastifyRequest, reply: FastifyReply) {
  const { deployments } = request.server.services;
  const families = Object.fromEntries(
    Object.values(FAMILIES).map((f) => [
      f.id,
      {
        generation: f.generation,
        submit: f.submit,
        edit: f.edit,
        maxEditImages: f.maxEditImages,
        revisesPrompt: f.revisesPrompt,
        annotatesItems: f.annotatesItems,
        alwaysBase64: f.alwaysBase64,
      },
    ]),
  );
  return reply.header('cache-control', 'no-cache').send({
    apiVersions: PLAYGROUND_API_VERSIONS,
    deployments: [...deployments.values()].map((d) => ({
      name: d.name,
      model: d.model,
      family: d.family.id,
      status: d.runtime.status,
      ...(d.runtime.reason ? { reason: d.runtime.reason } : {}),
    })),
    families,
  });
}
