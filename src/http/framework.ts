/**
 * The requests that Fastify or Node answer before a route runs: bodies on routes that take none,
 * URLs the router cannot read, and bytes the HTTP parser rejects. Left alone, each of these answers
 * in Fastify's or Node's own shape ({"error":"Bad Request","statusCode":400}, text/plain …); here
 * every one is answered in Azure's envelope from the error catalogue.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { type ApiError, errors } from '../contract/errors.ts';

/**
 * Only the POST routes read a body. GET and DELETE (operations, image files, health) take none, and
 * an unknown route answers 404 whatever it was sent: a client that sends `Content-Type:
 * application/json` on them with an empty body (python `requests.delete(url, headers=headers)`
 * sends `content-length: 0`) is making an empty request, not sending invalid JSON.
 */
export function takesBody(request: FastifyRequest): boolean {
  return request.method === 'POST' && !request.is404;
}

/**
 * JSON through Fastify's own parser (prototype-poisoning checks kept) where a body is read;
 * anything else, on a route that reads none, is ignored. The text/plain parser goes: without it, a
 * wrong Content-Type on a POST is a 415, not a string that then reads as invalid JSON.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (!takesBody(request)) return done(null, undefined);
    // Fastify's default JSON parser answers through `done` and returns nothing; its type also allows the async form.
    void parseJson(request, body as string, done);
  });
  // Fastify's catch-all: every type without a parser of its own (multipart has one).
  app.addContentTypeParser('*', (request, payload, done) => {
    if (!takesBody(request)) {
      // Node discards what is left of the body once the answer is sent.
      done(null, undefined);
      return;
    }
    const expected = request.routeOptions.url?.endsWith('/edits') ? 'multipart/form-data' : 'application/json';
    done(errors.unsupportedMediaType(expected, request.headers['content-type']) as unknown as FastifyError, undefined);
  });
}

/** Azure's request-id headers, for answers that never went through the onRequest hook. */
function idHeaders(id: string): Record<string, string> {
  return { 'x-request-id': id, 'apim-request-id': id, 'x-ms-region': 'local' };
}

/**
 * Fastify's `frameworkErrors`: a path with malformed percent-encoding, or a path segment longer
 * than the router's maxParamLength. Neither reaches a route or its hooks.
 */
export function frameworkErrorHandler(maxParamLength: number) {
  return function onFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    const apiError =
      error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? errors.uriTooLong(maxParamLength) : errors.malformedUrl();
    request.log.info({ code: apiError.code, reason: error.code }, 'rejected before routing');
    void reply
      .code(apiError.status)
      .headers(idHeaders(request.id))
      .header('x-easel-error-reason', error.code)
      .type('application/json')
      .send(apiError.toWire());
  };
}

/** Why Node's parser gave up, in words a client can act on (its codes are llhttp's). */
function clientErrorOf(error: NodeJS.ErrnoException, requestTimeoutSeconds: number): ApiError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return errors.headersTooLarge();
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return errors.requestTimeout(requestTimeoutSeconds);
    case 'HPE_INVALID_METHOD':
    case 'HPE_INVALID_URL':
    case 'HPE_INVALID_VERSION':
      return errors.malformedHttp('the request line is malformed');
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONSTANT':
      return errors.malformedHttp('a header holds a character HTTP does not allow');
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return errors.malformedHttp('the Content-Length header is not valid');
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return errors.malformedHttp('the chunked body is malformed');
    default:
      return errors.malformedHttp('the parser rejected it');
  }
}

/**
 * Node's `clientError`: the parser rejected the bytes, the headers were too large, or the client did
 * not finish its request within requestTimeout. There is no request object, so the answer is written
 * to the socket by hand (a minimal HTTP/1.1 response with a JSON body), then the connection closes.
 * The raw packet is never logged: its request line may carry a key.
 */
export function clientErrorHandler(requestTimeoutSeconds: number) {
  // Fastify binds the handler to the instance, whose logger carries the request serializers.
  return function onClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const apiError = clientErrorOf(error, requestTimeoutSeconds);
    const id = randomUUID();
    this.log.info(
      { reqId: id, code: apiError.code, reason: error.code, remoteAddress: socket.remoteAddress },
      'HTTP parser rejected a request',
    );
    // A response already under way on this connection cannot be followed by another one.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (!socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify(apiError.toWire());
    const headers = {
      ...idHeaders(id),
      'x-easel-error-reason': error.code ?? 'unknown',
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
    };
    const head = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.end(`HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}\r\n${head}\r\n${body}`);
    // A client that never reads its answer must not hold the socket open.
    socket.setTimeout(5000, () => socket.destroy());
  };
}

/**
 * Node answers an `Expect` it does not know with a bare 417 and no body unless the server listens
 * for `checkExpectation`; this listener sends the same status in the envelope.
 */
export function answerUnmetExpectations(server: Server): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const apiError = errors.expectationFailed(String(request.headers.expect ?? ''));
    const body = JSON.stringify(apiError.toWire());
    response.writeHead(apiError.status, {
      ...idHeaders(randomUUID()),
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    response.end(body);
  });
}

/**
 * HTTP/1.1 requires a Host header. Node's own check answers a bare 400 with no body, so it is off
 * (requireHostHeader: false) and this hook refuses in the envelope instead.
 */
export async function requireHost(request: FastifyRequest): Promise<void> {
  if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
    throw errors.malformedHttp('an HTTP/1.1 request must carry a Host header');
  }
}
