import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { ApiError, errors } from '../contract/errors.ts';
import { apiVersionHook } from './api-version.ts';
import { authHook } from './auth.ts';
import { sendApiError, toApiError } from './errors.ts';
import { ROUTES } from './routes.ts';
import { securityHeaders } from './security-headers.ts';
import type { Services } from './services.ts';

export interface ServerOptions {
  logger: FastifyBaseLogger | boolean | object;
}

/**
 * What a log line says of a request: method, URL, host and peer, with the signature of signed
 * image links redacted (a `sig` is a credential for that image). Keys travel in headers, which are
 * never logged.
 */
export function requestForLog(request: { method: string; url: string; host?: string; hostname?: string; ip?: string }) {
  return {
    method: request.method,
    url: request.url.replace(/([?&]sig=)[^&]*/g, '$1[redacted]'),
    host: request.host ?? request.hostname,
    remoteAddress: request.ip,
  };
}

/** Assemble Fastify: request ids and Azure's headers, uploads, the route table, one error handler. */
export async function buildServer(services: Services, options: ServerOptions): Promise<FastifyInstance> {
  const { limits } = services.config;
  const app = Fastify({
    ...(typeof options.logger === 'object' && 'child' in options.logger
      ? { loggerInstance: (options.logger as FastifyBaseLogger).child({}, { serializers: { req: requestForLog } }) }
      : { logger: options.logger }),
    genReqId: () => randomUUID(),
    bodyLimit: limits.maxJsonBodyBytes,
    return503OnClosing: true,
  });
  app.decorate('services', services);
  // Every body is JSON or multipart; without this, Fastify's built-in text/plain parser hands the
  // handlers a string and a wrong Content-Type reads as invalid JSON (400) instead of a 415.
  app.removeContentTypeParser('text/plain');

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
    exposedHeaders: ['x-request-id', 'apim-request-id', 'operation-location', 'retry-after', 'retry-after-ms'],
    maxAge: 600,
  });

  // Azure's troubleshooting headers on every answer, errors and 404s included (reference §6).
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id).header('apim-request-id', request.id).header('x-ms-region', 'local');
    const clientId = request.headers['x-ms-client-request-id'];
    if (typeof clientId === 'string') reply.header('x-ms-client-request-id', clientId);
  });

  // nosniff on every answer; the playground's page a strict CSP (security-headers.ts says why by hand).
  app.addHook('onRequest', securityHeaders(services.config.publicUrl));

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

  app.setNotFoundHandler((_request, reply) => sendApiError(reply, errors.resourceNotFound()));
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error, request, limits);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    else if (!(error instanceof ApiError)) request.log.info({ code: apiError.code, detail: (error as Error).message }, 'rejected');
    return sendApiError(reply, apiError);
  });
  return app;
}
