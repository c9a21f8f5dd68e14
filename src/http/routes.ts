import type { FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';

import type { ApiRoute } from '../contract/api-versions.ts';
import * as files from './handlers/files.ts';
import * as health from './handlers/health.ts';
import * as images from './handlers/images.ts';
import * as metrics from './handlers/metrics.ts';
import * as operations from './handlers/operations.ts';
import * as playground from './handlers/playground.ts';

export interface RouteDef {
  method: HTTPMethods;
  url: string;
  /** Which api-version rule applies: an Azure route kind, `v1` (optional version), or none. */
  apiVersion: ApiRoute | 'v1' | null;
  auth: boolean;
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

/**
 * The whole API surface in one table (Fastify spells a literal ':' as '::').
 * Azure paths first, then the v1 surface, then the plain OpenAI paths, then easel's own.
 */
export const ROUTES: RouteDef[] = [
  // Azure, deployment in the URL (docs/azure-api.md, "Routes and api-versions").
  {
    method: 'POST',
    url: '/openai/deployments/:deployment/images/generations',
    apiVersion: 'generations',
    auth: true,
    handler: (q, r) => images.generate(q, r, 'path'),
  },
  {
    method: 'POST',
    url: '/openai/deployments/:deployment/images/edits',
    apiVersion: 'edits',
    auth: true,
    handler: (q, r) => images.edit(q, r, 'path'),
  },
  // The openai npm client (4.104–7.4) sends edits here when no client-level deployment is set (docs/azure-api.md, "What
  // the official clients send").
  {
    method: 'POST',
    url: '/openai/images/edits',
    apiVersion: 'edits',
    auth: true,
    handler: (q, r) => images.edit(q, r, 'model'),
  },
  // DALL-E 2 asynchronous operations (docs/azure-api.md, "DALL-E 2 operations").
  {
    method: 'POST',
    url: '/openai/images/generations::submit',
    apiVersion: 'operations',
    auth: true,
    handler: operations.submit,
  },
  {
    method: 'GET',
    url: '/openai/operations/images/:id',
    apiVersion: 'operations',
    auth: true,
    handler: operations.get,
  },
  {
    method: 'DELETE',
    url: '/openai/operations/images/:id',
    apiVersion: 'operations',
    auth: true,
    handler: operations.remove,
  },
  // The v1 surface: deployment in `model`, api-version optional, Bearer key (docs/azure-api.md, "Routes and
  // api-versions").
  {
    method: 'POST',
    url: '/openai/v1/images/generations',
    apiVersion: 'v1',
    auth: true,
    handler: (q, r) => images.generate(q, r, 'model'),
  },
  {
    method: 'POST',
    url: '/openai/v1/images/edits',
    apiVersion: 'v1',
    auth: true,
    handler: (q, r) => images.edit(q, r, 'model'),
  },
  // Plain OpenAI paths, for `new OpenAI({ baseURL: 'http://host:port/v1' })`.
  {
    method: 'POST',
    url: '/v1/images/generations',
    apiVersion: 'v1',
    auth: true,
    handler: (q, r) => images.generate(q, r, 'model'),
  },
  {
    method: 'POST',
    url: '/v1/images/edits',
    apiVersion: 'v1',
    auth: true,
    handler: (q, r) => images.edit(q, r, 'model'),
  },
  // Signed image links: the signature is the credential.
  { method: 'GET', url: '/files/images/:name', apiVersion: null, auth: false, handler: files.download },
  // Operators: liveness, readiness with each deployment's state, Prometheus metrics (keep them off
  // the public internet).
  { method: 'GET', url: '/healthz', apiVersion: null, auth: false, handler: health.healthz },
  { method: 'GET', url: '/readyz', apiVersion: null, auth: false, handler: health.readyz },
  { method: 'GET', url: '/metrics', apiVersion: null, auth: false, handler: metrics.metrics },
  // The playground page and its assets; its config lists the deployments and FAMILIES' tables
  // (no key: the page asks for one before it calls the API).
  { method: 'GET', url: '/', apiVersion: null, auth: false, handler: playground.page },
  { method: 'GET', url: '/playground/config.json', apiVersion: null, auth: false, handler: playground.config },
  { method: 'GET', url: '/playground/:file', apiVersion: null, auth: false, handler: playground.asset },
  { method: 'GET', url: '/favicon.ico', apiVersion: null, auth: false, handler: playground.favicon },
  {
    method: 'GET',
    url: '/openapi.json',
    apiVersion: null,
    auth: false,
    handler: async (_q, r) => (await import('./openapi.ts')).serveOpenApi(r, ROUTES),
  },
];
