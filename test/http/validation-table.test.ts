// Every parameter of every family in src/contract/families.ts, sent with a wrong type, out of
// range or outside its enum, answers 400 invalid_parameter naming it; every parameter of another
// family answers unsupported_parameter. The cases are generated from the table itself, so a new
// parameter is covered the day it is added.
import { after, before, describe, test } from 'node:test';

import { FAMILIES, type FamilyId, knownParams, type ParamSpec, type ParamTable } from '../../src/contract/families.ts';
import { solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertError,
  editsUrl,
  file,
  generationsUrl,
  postForm,
  postJson,
  type Response,
  submitUrl,
} from './helpers.ts';

let app: TestApp;
let image: Buffer;
before(async () => {
  app = await startTestApp();
  image = await solidPng(16, 16);
});
after(() => app.dispose());

type Source = 'json' | 'multipart';
interface Target {
  family: FamilyId;
  operation: 'generation' | 'submit' | 'edit';
  route: string;
  source: Source;
  send(body: Record<string, unknown>): Promise<Response>;
}

const TARGETS: Target[] = [
  {
    family: 'dall-e-2',
    operation: 'submit',
    route: 'generations:submit',
    source: 'json',
    send: (b) => postJson(app, submitUrl(), b),
  },
  {
    family: 'dall-e-3',
    operation: 'generation',
    route: 'generations',
    source: 'json',
    send: (b) => postJson(app, generationsUrl('dall-e-3'), b),
  },
  {
    family: 'gpt-image-1',
    operation: 'generation',
    route: 'generations',
    source: 'json',
    send: (b) => postJson(app, generationsUrl('gpt-image-1'), b),
  },
  {
    family: 'gpt-image-1',
    operation: 'edit',
    route: 'edits',
    source: 'multipart',
    send: (b) => sendEdit('gpt-image-1', b),
  },
  { family: 'dall-e-2', operation: 'edit', route: 'edits', source: 'multipart', send: (b) => sendEdit('dall-e-2', b) },
];

function sendEdit(deployment: string, body: Record<string, unknown>): Promise<Response> {
  const fields = Object.entries(body).map(([name, value]) => ({ name, value: String(value) }));
  return postForm(app, editsUrl(deployment), [...fields, file('image', image)]);
}

/** Values that break `spec`, each with a few words for the test name. */
function badValues(name: string, spec: ParamSpec, source: Source): Array<[unknown, string]> {
  const json = source === 'json';
  switch (spec.kind) {
    case 'string':
      return [
        ...(json ? ([[42, 'a number']] as Array<[unknown, string]>) : []),
        ...(spec.maxLength !== undefined
          ? ([['x'.repeat(spec.maxLength + 1), `${spec.maxLength + 1} characters`]] as Array<[unknown, string]>)
          : []),
      ];
    case 'enum':
      return [
        ['nope', '"nope"'],
        [`${spec.values[0]!.toUpperCase()} `, `"${spec.values[0]!.toUpperCase()} " (case and space)`],
        ...(json
          ? ([
              [1, 'a number'],
              [[spec.values[0]], 'an array'],
            ] as Array<[unknown, string]>)
          : []),
      ];
    case 'int':
      return [
        [spec.min - 1, String(spec.min - 1)],
        [spec.max + 1, String(spec.max + 1)],
        [spec.min + 0.5, String(spec.min + 0.5)],
        ['abc', '"abc"'],
        ...(json
          ? ([
              [String(spec.min), `the string "${spec.min}"`],
              [true, 'true'],
            ] as Array<[unknown, string]>)
          : []),
      ];
    case 'number':
      return [
        ...(spec.exclusiveMin ? ([[spec.min, String(spec.min)]] as Array<[unknown, string]>) : []),
        [spec.min - 0.5, String(spec.min - 0.5)],
        [spec.max + 0.5, String(spec.max + 0.5)],
        ['abc', '"abc"'],
        ...(json
          ? ([
              [String(spec.max), `the string "${spec.max}"`],
              [true, 'true'],
              [null, 'null'],
            ] as Array<[unknown, string]>)
          : []),
      ];
    case 'bool':
      return json
        ? [
            ['true', 'the string "true"'],
            [1, '1'],
          ]
        : [
            ['yes', '"yes"'],
            ['1', '"1"'],
          ];
  }
  throw new Error(`no bad values for ${name}`);
}

function tableOf(target: Target): ParamTable {
  const family = FAMILIES[target.family];
  return family[target.operation]!;
}

for (const target of TARGETS) {
  const table = tableOf(target);
  const label = `${target.family} ${target.route}`;

  describe(`${label}: invalid values`, () => {
    for (const [name, spec] of Object.entries(table)) {
      for (const [value, words] of badValues(name, spec, target.source)) {
        test(`${label} rejects ${name}=${words} with 400 invalid_parameter naming ${name}`, async () => {
          const body: Record<string, unknown> =
            name === 'prompt' ? { [name]: value } : { prompt: 'a small boat', [name]: value };
          assertError(await target.send(body), 400, 'invalid_parameter', name);
        });
      }
    }
  });

  describe(`${label}: parameters of other families and unknown names`, () => {
    const foreign = [...knownParams(target.operation)].filter(
      (name) => !(name in table) && !['image', 'image[]', 'mask'].includes(name),
    );
    for (const name of foreign) {
      test(`${label} rejects ${name} (another family's parameter) with 400 unsupported_parameter`, async () => {
        assertError(
          await target.send({ prompt: 'a small boat', [name]: sampleValue(name) }),
          400,
          'unsupported_parameter',
          name,
        );
      });
    }

    for (const name of ['colour', 'negative_prompt', 'Prompt']) {
      test(`${label} rejects the unknown field ${name} with 400 unknown_parameter`, async () => {
        assertError(await target.send({ prompt: 'a small boat', [name]: 'x' }), 400, 'unknown_parameter', name);
      });
    }
  });

  describe(`${label}: prompt`, () => {
    test(`${label} without prompt answers 400 missing_required_parameter naming prompt`, async () => {
      assertError(await target.send({}), 400, 'missing_required_parameter', 'prompt');
    });

    test(`${label} with an empty prompt answers 400 invalid_parameter naming prompt`, async () => {
      assertError(await target.send({ prompt: '' }), 400, 'invalid_parameter', 'prompt');
    });

    test(`${label} with a whitespace-only prompt answers 400 invalid_parameter naming prompt`, async () => {
      assertError(await target.send({ prompt: '   ' }), 400, 'invalid_parameter', 'prompt');
    });
  });
}

/** A value valid for the family that owns the parameter. */
function sampleValue(name: string): unknown {
  for (const family of Object.values(FAMILIES)) {
    const spec = family.generation[name] ?? family.edit?.[name];
    if (!spec) continue;
    switch (spec.kind) {
      case 'enum':
        return spec.values[0];
      case 'int':
        return spec.min;
      case 'number':
        return spec.max;
      case 'bool':
        return false;
      case 'string':
        return 'x';
    }
  }
  return 'x';
}
