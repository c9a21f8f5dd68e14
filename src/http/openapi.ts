/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the route table (ROUTES), the parameter
 * tables (FAMILIES) and the api-version rules, so it describes exactly what the server accepts.
 * ROUTES is passed in rather than imported: routes.ts serves this document, and an import back
 * would be a cycle.
 */
import type { FastifyReply } from 'fastify';

import { type ApiRoute, KNOWN_API_VERSIONS, versionHasRoute } from '../contract/api-versions.ts';
import {
  componentSchemas,
  familiesWith,
  type ParamOperation,
  requestSchemaName,
  type Schema,
} from './openapi-schemas.ts';

/** What the document needs of a RouteDef (routes.ts). */
export interface RouteShape {
  method: string | string[];
  url: string;
  apiVersion: ApiRoute | 'v1' | null;
  auth: boolean;
}

type Kind =
  | ParamOperation
  | 'getOperation'
  | 'deleteOperation'
  | 'file'
  | 'healthz'
  | 'readyz'
  | 'openapi'
  | 'playground'
  | 'other';

/** What a route does, read from its method and path. */
function kindOf(method: string, url: string): Kind {
  if (url.endsWith('/images/generations::submit')) return 'submit';
  if (url.endsWith('/images/generations')) return 'generation';
  if (url.endsWith('/images/edits')) return 'edit';
  if (url.startsWith('/openai/operations/images/')) return method === 'DELETE' ? 'deleteOperation' : 'getOperation';
  if (url.startsWith('/files/images/')) return 'file';
  if (url === '/healthz' || url === '/readyz') return url.slice(1) as Kind;
  if (url === '/openapi.json') return 'openapi';
  if (url === '/' || url === '/favicon.ico' || url.startsWith('/playground/')) return 'playground';
  return 'other';
}

/** Fastify's `:param` becomes `{param}`; its literal `::` becomes `:`. */
export function openApiPath(url: string): string {
  return url
    .split('::')
    .map((part) => part.replace(/:([A-Za-z0-9_]+)/g, '{$1}'))
    .join(':');
}

const json = (schema: Schema) => ({ 'application/json': { schema } });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** Error statuses per kind of route: the error catalogue's statuses each handler can reach. */
const ERROR_STATUSES: Partial<Record<Kind, number[]>> = {
  generation: [400, 401, 404, 413, 415, 429, 500, 503],
  edit: [400, 401, 404, 413, 415, 429, 500, 503],
  submit: [400, 401, 404, 413, 415, 429, 500, 503],
  getOperation: [400, 401, 404, 500],
  deleteOperation: [400, 401, 404, 409, 500],
  file: [403, 404, 500],
};

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input (param names the field), an unsupported api-version, or a blocked prompt (content_policy_violation).',
  401: 'Missing or wrong key.',
  403: 'The link was tampered with or has expired.',
  404: 'DeploymentNotFound, an unknown operation, or a route this api-version lacks (code "404").',
  409: 'The operation has not ended yet.',
  413: 'The body or an uploaded file is larger than the limit.',
  415: 'Wrong Content-Type for this route.',
  429: 'The generation queue is full: retry after retry-after seconds.',
  500: 'The generation failed or timed out, or an internal error (the message carries the request id).',
  503: 'The deployment is not available (its model is missing, broken or still loading).',
};

function errorResponses(statuses: number[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((status) => [String(status), { $ref: `#/components/responses/Error${status}` }]),
  );
}

function componentResponses(): Record<string, unknown> {
  const statuses = [...new Set(Object.values(ERROR_STATUSES).flat())].sort();
  return Object.fromEntries(
    statuses.map((status) => {
      const headers: Record<string, unknown> = { 'x-request-id': { $ref: '#/components/headers/RequestId' } };
      if (status === 429) {
        headers['retry-after'] = { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } };
        headers['retry-after-ms'] = { description: 'The same, in milliseconds.', schema: { type: 'integer' } };
      }
      return [`Error${status}`, { description: ERROR_TEXT[status], headers, content: json(ref('ErrorResponse')) }];
    }),
  );
}

function apiVersionParameter(route: RouteShape): Schema[] {
  if (route.apiVersion === null) return [];
  if (route.apiVersion === 'v1') {
    return [
      {
        name: 'api-version',
        in: 'query',
        required: false,
        description: 'Optional on the v1 surface: preview, latest, v1, or any supported Azure version.',
        schema: { type: 'string' },
      },
    ];
  }
  const kind = route.apiVersion;
  const versions = KNOWN_API_VERSIONS.filter((v) => versionHasRoute(v, kind));
  return [
    {
      name: 'api-version',
      in: 'query',
      required: true,
      description:
        `Azure api-version. Known versions with this route: ${versions.join(', ')}. ` +
        (kind === 'operations'
          ? 'Versions from 2023-12-01-preview on answer 404.'
          : 'Newer well-formed versions are accepted too.'),
      schema: {
        type: 'string',
        pattern: '^\\d{4}-\\d{2}-\\d{2}(-preview)?$',
        examples: [versions[versions.length - 1]],
      },
    },
  ];
}

/** The request body of a generation, submit or edit route: any of the families' bodies. */
function requestBody(operation: ParamOperation, needsModel: boolean): Schema {
  const anyOf = familiesWith(operation).map((family) => ref(requestSchemaName(family.id, operation)));
  const schema: Schema = needsModel ? { allOf: [{ anyOf }, { required: ['model'] }] } : { anyOf };
  const media = operation === 'edit' ? 'multipart/form-data' : 'application/json';
  const content: Schema = { [media]: { schema } };
  if (operation === 'edit') {
    content[media] = {
      schema,
      encoding: { image: { contentType: 'image/png, image/jpeg, image/webp' }, mask: { contentType: 'image/png' } },
    };
  }
  return {
    required: true,
    description:
      "One body per model family; the deployment's model decides which applies (the others' parameters answer 400).",
    content,
  };
}

const SUMMARIES: Record<Kind, string> = {
  generation: 'Generate images',
  edit: 'Edit images',
  submit: 'Submit a DALL-E 2 generation (asynchronous)',
  getOperation: 'Get a DALL-E 2 operation',
  deleteOperation: 'Delete an ended DALL-E 2 operation and its images',
  file: 'Download a generated image (signed link)',
  healthz: 'Liveness',
  readyz: 'Readiness, with each deployment state',
  openapi: 'This document',
  playground: 'The playground page, its files and icon, and its config (deployments and FAMILIES parameter tables)',
  other: '',
};

function successResponses(kind: Kind): Record<string, unknown> {
  const requestId = { 'x-request-id': { $ref: '#/components/headers/RequestId' } };
  switch (kind) {
    case 'generation':
    case 'edit':
      return {
        200: {
          description: 'The images; with stream: true (gpt-image-1), server-sent events instead.',
          headers: requestId,
          content: {
            ...json(ref('ImagesResponse')),
            'text/event-stream': {
              schema: {
                type: 'string',
                description: 'Server-sent events; each data line is an ImageStreamEvent as JSON.',
              },
            },
          },
        },
      };
    case 'submit':
      return {
        202: {
          description: 'Accepted: poll operation-location.',
          headers: {
            ...requestId,
            'operation-location': {
              description: 'Absolute URL of the operation.',
              schema: { type: 'string', format: 'uri' },
            },
            'retry-after': { description: 'Seconds before the first poll.', schema: { type: 'integer' } },
          },
          content: json(ref('OperationSubmitted')),
        },
      };
    case 'getOperation':
      return { 200: { description: 'The operation.', headers: requestId, content: json(ref('Operation')) } };
    case 'deleteOperation':
      return { 204: { description: 'Deleted, with its images.' } };
    case 'file':
      return {
        200: {
          description: 'The image bytes.',
          content: Object.fromEntries(
            ['image/png', 'image/jpeg', 'image/webp'].map((t) => [t, { schema: { type: 'string', format: 'binary' } }]),
          ),
        },
      };
    case 'healthz':
      return {
        200: {
          description: 'The process answers.',
          content: json({ type: 'object', properties: { status: { const: 'ok' } } }),
        },
      };
    case 'readyz': {
      const body = json({
        type: 'object',
        required: ['status', 'storage', 'deployments'],
        properties: {
          status: { type: 'string', enum: ['ready', 'loading', 'not ready'] },
          storage: { type: 'string' },
          deployments: {
            type: 'object',
            additionalProperties: { type: 'object' },
            description: 'Each deployment: model, engine, status, reason.',
          },
        },
      });
      return {
        200: { description: 'Ready.', content: body },
        503: { description: 'Loading, or not ready.', content: body },
      };
    }
    case 'openapi':
      return { 200: { description: 'This OpenAPI document.', content: json({ type: 'object' }) } };
    case 'playground':
      return { 200: { description: 'An HTML page, a script or stylesheet, an icon, or the JSON config.' } };
    case 'other':
      return { 200: { description: 'OK.' } };
  }
}

function operationObject(route: RouteShape, method: string): Schema {
  const kind = kindOf(method, route.url);
  const parameters: Schema[] = [];
  for (const [, name] of route.url.matchAll(/(?<!:):([A-Za-z0-9_]+)/g)) {
    parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
  }
  parameters.push(...apiVersionParameter(route));
  if (kind === 'file') {
    parameters.push(
      { name: 'se', in: 'query', required: true, description: 'Expiry, unix seconds.', schema: { type: 'string' } },
      {
        name: 'sig',
        in: 'query',
        required: true,
        description: 'Signature of the path and expiry.',
        schema: { type: 'string' },
      },
    );
  }
  const operation: Schema = {
    operationId: `${method.toLowerCase()}${openApiPath(route.url).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string = '') => c.toUpperCase())}`,
    summary: SUMMARIES[kind] || `${method} ${route.url}`,
    security: route.auth ? [{ apiKey: [] }, { bearer: [] }] : [],
    responses: {
      ...successResponses(kind),
      ...(route.auth && !ERROR_STATUSES[kind] ? errorResponses([401]) : {}),
      ...errorResponses(ERROR_STATUSES[kind] ?? []),
    },
  };
  if (parameters.length > 0) operation.parameters = parameters;
  if (kind === 'generation' || kind === 'edit' || kind === 'submit') {
    operation.requestBody = requestBody(kind, kind !== 'submit' && !route.url.includes(':deployment'));
  }
  return operation;
}

/** Build the document for a route table. */
export function buildOpenApi(routes: readonly RouteShape[]): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const route of routes) {
    for (const method of [route.method].flat()) {
      const path = openApiPath(route.url);
      (paths[path] ??= {})[method.toLowerCase()] = operationObject(route, method);
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'easel: Azure OpenAI Images API',
      version: '1.0.0',
      description:
        'Generated from the route table and the per-model parameter tables easel validates with. ' +
        'Parameters marked x-easel-extension are easel additions, not Azure parameters.',
    },
    paths,
    components: {
      schemas: componentSchemas(),
      responses: componentResponses(),
      headers: {
        RequestId: { description: 'The request id (also sent as apim-request-id).', schema: { type: 'string' } },
      },
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'api-key', description: 'Azure style key header.' },
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'Authorization: Bearer <key> (the v1 surface and OpenAI clients).',
        },
      },
    },
  };
}

const cache = new WeakMap<readonly RouteShape[], string>();

/** The document for a route table, serialized once. */
export function openApiJson(routes: readonly RouteShape[]): string {
  let text = cache.get(routes);
  if (text === undefined) cache.set(routes, (text = JSON.stringify(buildOpenApi(routes))));
  return text;
}

/** The handler body: routes.ts calls it with ROUTES. */
export async function serveOpenApi(reply: FastifyReply, routes: readonly RouteShape[]) {
  return reply.type('application/json; charset=utf-8').send(openApiJson(routes));
}
