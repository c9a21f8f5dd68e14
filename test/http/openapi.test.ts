// GET /openapi.json: valid OpenAPI 3.1, every route of ROUTES in it, every FAMILIES parameter in
// the request schema with the same values and limits, and each schema's example accepted by the server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Validator } from '@seriousme/openapi-schema-validator';

import { FAMILIES, FAMILY_IDS, knownParams, type ParamSpec } from '../../src/contract/families.ts';
import { buildOpenApi, openApiPath } from '../../src/http/openapi.ts';
import { type ParamOperation, requestSchemaName } from '../../src/http/openapi-schemas.ts';
import { ROUTES } from '../../src/http/routes.ts';
import { solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import { file, postForm, postJson } from './helpers.ts';

type Doc = {
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, any>; securitySchemes: Record<string, any> };
};

let app: TestApp;
let doc: Doc;
before(async () => {
  app = await startTestApp();
  const res = await app.server.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200, res.body);
  doc = res.json();
});
after(() => app.dispose());

const OPERATIONS: ParamOperation[] = ['generation', 'submit', 'edit'];

describe('GET /openapi.json', () => {
  test('answers 200 without a key, as application/json', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
  });

  test('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    // A copy: resolveRefs replaces the $refs of the object it validated.
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
    // Every $ref points at something: resolving throws on a dangling one.
    assert.doesNotThrow(() => validator.resolveRefs());
  });

  test('serves the document built from ROUTES', () => {
    assert.deepEqual(doc, JSON.parse(JSON.stringify(buildOpenApi(ROUTES))));
  });

  test('every route of ROUTES appears with its method', () => {
    for (const route of ROUTES) {
      for (const method of [route.method].flat()) {
        const path = openApiPath(route.url);
        assert.ok(doc.paths[path]?.[method.toLowerCase()], `${method} ${path} missing`);
      }
    }
    assert.ok(doc.paths['/openai/images/generations:submit']?.post);
    assert.ok(doc.paths['/openai/deployments/{deployment}/images/generations']?.post);
    assert.ok(doc.paths['/files/images/{name}']?.get);
  });

  test('keyed routes name both security schemes; open routes none', () => {
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['apiKey', 'bearer']);
    assert.equal(doc.components.securitySchemes.apiKey.name, 'api-key');
    for (const route of ROUTES) {
      const op = doc.paths[openApiPath(route.url)]![[route.method].flat()[0]!.toLowerCase()];
      assert.deepEqual(op.security, route.auth ? [{ apiKey: [] }, { bearer: [] }] : [], route.url);
    }
  });

  test('api-version is required on Azure routes and optional on v1 routes', () => {
    for (const route of ROUTES) {
      const op = doc.paths[openApiPath(route.url)]![[route.method].flat()[0]!.toLowerCase()];
      const param = (op.parameters ?? []).find((p: { name: string }) => p.name === 'api-version');
      if (route.apiVersion === null) assert.equal(param, undefined, route.url);
      else assert.equal(param.required, route.apiVersion !== 'v1', route.url);
    }
  });

  test('generation routes list every error status with the Azure envelope, 429 with retry-after', () => {
    const op = doc.paths['/openai/deployments/{deployment}/images/generations']!.post;
    assert.deepEqual(Object.keys(op.responses).sort(), ['200', '400', '401', '404', '413', '415', '429', '500', '503']);
    const tooMany = doc.paths['/v1/images/edits']!.post.responses['429'].$ref.split('/').pop();
    const response = (doc.components as any).responses[tooMany];
    assert.ok(response.headers['retry-after']);
    assert.deepEqual(response.content['application/json'].schema, { $ref: '#/components/schemas/ErrorResponse' });
    assert.ok(doc.paths['/openai/operations/images/{id}']!.delete.responses['409']);
  });

  test('edits are multipart with binary image, image[] and mask', () => {
    const body = doc.paths['/openai/deployments/{deployment}/images/edits']!.post.requestBody;
    assert.ok(body.content['multipart/form-data']);
    const schema = doc.components.schemas[requestSchemaName('gpt-image-1', 'edit')];
    assert.equal(schema.properties.image.format, 'binary');
    assert.equal(schema.properties['image[]'].items.format, 'binary');
    assert.equal(schema.properties['image[]'].maxItems, 16);
    assert.equal(schema.properties.mask.format, 'binary');
  });

  test('easel extensions seed and strength are marked x-easel-extension', () => {
    const edit = doc.components.schemas[requestSchemaName('gpt-image-1', 'edit')].properties;
    assert.equal(edit.seed['x-easel-extension'], true);
    assert.equal(edit.strength['x-easel-extension'], true);
    assert.equal(edit.prompt['x-easel-extension'], undefined);
  });
});

/** What the schema of one FAMILIES parameter must say. */
function expectedSchema(spec: ParamSpec): Record<string, unknown> {
  const base: Record<string, unknown> = {};
  switch (spec.kind) {
    case 'string':
      Object.assign(base, { type: 'string', maxLength: spec.maxLength });
      break;
    case 'enum':
      Object.assign(base, { type: 'string', enum: [...spec.values] });
      break;
    case 'int':
      Object.assign(base, { type: 'integer', minimum: spec.min, maximum: spec.max });
      break;
    case 'number':
      Object.assign(base, {
        type: 'number',
        maximum: spec.max,
        [spec.exclusiveMin ? 'exclusiveMinimum' : 'minimum']: spec.min,
      });
      break;
    case 'bool':
      base.type = 'boolean';
      break;
  }
  if ('default' in spec) base.default = spec.default;
  if (spec.extension) base['x-easel-extension'] = true;
  return base;
}

describe('every FAMILIES parameter is in the request schemas', () => {
  for (const id of FAMILY_IDS) {
    for (const operation of OPERATIONS) {
      const table = FAMILIES[id][operation];
      if (!table) continue;
      test(`${id} ${operation}: ${Object.keys(table).length} parameters with their values, limits and defaults`, () => {
        const schema = doc.components.schemas[requestSchemaName(id, operation)];
        assert.ok(schema, `no schema for ${id} ${operation}`);
        for (const [name, spec] of Object.entries(table)) {
          const property = schema.properties[name];
          assert.ok(property, `${id} ${operation}: ${name} missing`);
          for (const [key, value] of Object.entries(expectedSchema(spec))) {
            assert.deepEqual(property[key], value, `${id} ${operation} ${name}.${key}`);
          }
          assert.equal(
            schema.required.includes(name),
            spec.kind === 'string' && spec.required === true,
            `${name} required`,
          );
        }
        const files = operation === 'edit' ? ['image', 'image[]', 'mask'] : [];
        assert.deepEqual(Object.keys(schema.properties).sort(), [...Object.keys(table), ...files].sort());
        assert.equal(schema.additionalProperties, false);
        for (const name of Object.keys(schema.properties))
          assert.ok(knownParams(operation).has(name) || operation === 'submit', name);
      });
    }
  }

  test('each operation route offers the bodies of exactly the families that have it', () => {
    const anyOf = (path: string) => {
      const content = doc.paths[path]!.post.requestBody.content;
      const schema = Object.values(content)[0] as { schema: any };
      return (schema.schema.anyOf ?? schema.schema.allOf[0].anyOf).map((r: { $ref: string }) =>
        r.$ref.split('/').pop(),
      );
    };
    assert.deepEqual(anyOf('/openai/deployments/{deployment}/images/generations'), [
      'DallE2GenerationRequest',
      'DallE3GenerationRequest',
      'GptImage1GenerationRequest',
    ]);
    assert.deepEqual(anyOf('/openai/v1/images/edits'), ['DallE2EditRequest', 'GptImage1EditRequest']);
    assert.deepEqual(anyOf('/openai/images/generations:submit'), ['DallE2SubmitRequest']);
    assert.deepEqual(
      doc.paths['/openai/v1/images/edits']!.post.requestBody.content['multipart/form-data'].schema.allOf[1],
      { required: ['model'] },
    );
  });
});

describe("each request schema's example (its defaults) is accepted by the server", () => {
  const example = (id: string, operation: ParamOperation) =>
    doc.components.schemas[requestSchemaName(id as never, operation)].examples[0] as Record<
      string,
      string | number | boolean
    >;

  for (const id of FAMILY_IDS.filter((f) => FAMILIES[f].generation)) {
    test(`${id} generation example answers 200`, async () => {
      const res = await postJson(
        app,
        `/openai/deployments/${id}/images/generations?api-version=2025-04-01-preview`,
        example(id, 'generation'),
      );
      assert.equal(res.statusCode, 200, res.body);
    });
  }

  test('dall-e-2 submit example answers 202', async () => {
    const res = await postJson(
      app,
      '/openai/images/generations:submit?api-version=2023-06-01-preview',
      example('dall-e-2', 'submit'),
    );
    assert.equal(res.statusCode, 202, res.body);
  });

  for (const id of FAMILY_IDS.filter((f) => FAMILIES[f].edit)) {
    test(`${id} edit example answers 200`, async () => {
      const fields = Object.entries(example(id, 'edit')).map(([name, value]) => ({ name, value: String(value) }));
      const res = await postForm(app, `/openai/deployments/${id}/images/edits?api-version=2025-04-01-preview`, [
        ...fields,
        file('image', await solidPng(64, 64)),
      ]);
      assert.equal(res.statusCode, 200, res.body);
    });
  }
});
