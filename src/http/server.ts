import { randomUUID } from 'node:crypto';

import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

import { ApiError, errors } from '../contract/errors.ts';
import { apiVersionHook } from './api-version.ts';
import { authHook } from './auth.ts';
import { sendApiError, toApiError } from './errors.ts';
import {
  answerUnmetExpectations,
  clientErrorHandler,
  frameworkErrorHandler,
  registerBodyParsers,
  requireHost,
} from './framework.ts';
import { redactUrl } from './redact.ts';
import { ROUTES } from './routes.ts';
import { securityHeaders } from './security-headers.ts';
import type { Services } from './services.ts';

export interface ServerOptions {
  logger: FastifyBaseLogger | boolean | object;
}

/**
 * What a log line says of a request: method, URL, host and peer, with every credential-like query
 * parameter redacted (a link's `sig`, a key a client put in `?api-key=` …). Headers, where keys
 * belong, are never logged.
 */
export function requestForLog(request: { method: string; url: string; host?: string; hostname?: string; ip?: string }) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host ?? request.hostname,
    remoteAddress: request.ip,
  };
}

/** Assemble Fastify: request ids and Azure's headers, uploads, the route table, one error handler. */
export async function buildServer(services: Services, options: ServerOptions): Promise<FastifyInstance> {
  const { limits } = services.config;
  const logger =
    typeof options.logger === 'object' && 'child' in options.logger
      ? (options.logger as FastifyBaseLogger).child({}, { serializers: { req: requestForLog } })
      : null;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: options.logger }),
    genReqId: () => randomUUID(),
    bodyLimit: limits.maxJsonBodyBytes,
    ...timeouts(limits),
    // Answered in Azure's envelope by the onRequest hook below, not by Fastify's own 503 body.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler(MAX_PARAM_LENGTH),
    clientErrorHandler: clientErrorHandler(limits.requestTimeoutSeconds),
  });
  app.decorate('services', services);
  answerUnmetExpectations(app.server);
  registerBodyParsers(app);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  await app.register(multipart, {
    limits: {
      fileSize: limits.maxImageBytes,
      files: 17, // 16 images and a mask
      fields: 40,
      parts: 60,
      fieldSize: 256 * 1024, // a 32,000-character prompt in UTF-8
    },
  });

  // Azure answers browsers from any origin (access-control-allow-origin: *), so web apps that call
  // it directly work against easel too. The key travels in a header, never in a cookie.
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['api-key', 'authorization', 'content-type', 'x-ms-client-request-id', 'ocp-apim-subscription-key'],
    exposedHeaders: [
      'x-request-id',
      'apim-request-id',
      'operation-location',
      'retry-after',
      'retry-after-ms',
      'x-easel-error-reason',
    ],
    maxAge: 600,
    // An OPTIONS without Origin is not a browser's preflight but a plain OPTIONS request (RFC 9110
    // section 9.3.7: which methods does this path take?); it gets the same 204 and Allow-Methods, not the
    // plugin's text/plain 400.
    strictPreflight: false,
  });

  // Azure's troubleshooting headers on every answer, errors and 404s included (docs/azure-api.md, "Response headers").
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id).header('apim-request-id', request.id).header('x-ms-region', 'local');
    const clientId = request.headers['x-ms-client-request-id'];
    if (typeof clientId === 'string') reply.header('x-ms-client-request-id', clientId);
    // Requests that still arrive on open keep-alive connections while the server drains.
    if (closing) throw errors.notAcceptingRequests();
  });
  app.addHook('onRequest', requireHost);

  // nosniff on every answer; the playground's page a strict CSP (security-headers.ts says why by hand).
  app.addHook('onRequest', securityHeaders(services.config.publicUrl, services.imageLinks.origin));

  // Every answer is counted, 404s and errors included (GET /metrics).
  app.addHook('onResponse', services.metrics.onResponse);

  const requireKey = authHook(services.isValidKey);
  for (const route of ROUTES) {
    const checkVersion = apiVersionHook(route);
    app.route({
      method: route.method,
      url: route.url,
      onRequest: route.auth ? [requireKey, checkVersion] : [checkVersion],
      handler: route.handler,
    });
  }

  app.setNotFoundHandler((request, reply) => {
    const error = errors.resourceNotFound(notFoundReason(request.url));
    request.log.info({ code: error.code, reason: error.reason }, 'no such route');
    return sendApiError(reply, error);
  });
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error, request, limits);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    else if (!(error instanceof ApiError))
      request.log.info({ code: apiError.code, detail: (error as Error).message }, 'rejected');
    else if (apiError.reason) request.log.info({ code: apiError.code, reason: apiError.reason }, 'rejected');
    return sendApiError(reply, apiError);
  });
  return app;
}

/** Deployment names are at most 64 characters and operation ids are UUIDs; longer segments are a 414. */
const MAX_PARAM_LENGTH = 100;

/**
 * Bound how long a client may take to send its request, never how long easel takes to answer:
 * Node's requestTimeout covers receiving the headers and the whole body, and stops once the request
 * is complete, so a long sync generation or SSE stream is not cut. Fastify's connectionTimeout (an
 * idle-socket timeout) stays off for that reason: a socket is idle while a generation runs. Node
 * checks the timers every connectionsCheckingInterval, so that is a fraction of the shorter one.
 */
function timeouts(limits: { requestTimeoutSeconds: number; headersTimeoutSeconds: number }) {
  const requestTimeout = limits.requestTimeoutSeconds * 1000;
  const headersTimeout = Math.min(limits.headersTimeoutSeconds * 1000, requestTimeout);
  return {
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout,
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, headersTimeout / 4)),
      requireHostHeader: false, // checked by requireHost, which answers in the envelope
    },
  };
}

/**
 * Azure answers a path with an empty segment (`//openai/…`, from an endpoint that ends in a slash
 * joined to a path that starts with one) with a plain 404, and so does easel; the log says why.
 */
function notFoundReason(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.includes('//')
    ? 'the path holds an empty segment (//): the endpoint the client was given probably ends in a slash; set it without one'
    : `no route for this path`;
}
