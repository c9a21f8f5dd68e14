// tools/check-imports.mjs on small src/ trees: the layer rules, imports through a folder's public
// index, and error envelopes only in the catalogue. Each tree breaks one rule and must be refused
// with a line naming the file; the clean tree passes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';

const script = resolve('tools/check-imports.mjs');
const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

const CLEAN: Record<string, string> = {
  'contract/errors.ts':
    "export class ApiError extends Error {}\nexport const errors = { gone: () => new ApiError('gone') };\n",
  'codec/index.ts':
    "// The codec. Other folders import from here, not from the files behind it.\nexport { encode } from './encode.ts';\n",
  'codec/encode.ts': "import { errors } from '../contract/errors.ts';\nexport const encode = () => errors;\n",
  'storage/index.ts':
    "// Bytes by key. Other folders import from here, not from the files behind it.\nexport { put } from './put.ts';\n",
  'storage/put.ts': "import { encode } from '../codec/index.ts';\nexport const put = () => encode();\n",
  'http/files.ts':
    "import { errors } from '../contract/errors.ts';\nimport { put } from '../storage/index.ts';\n// A comment may show { error: { code: 'x' } }.\nexport const f = () => [errors.gone(), put()];\n",
  'safety/filter.ts': "export const results = { error: { code: 'content_filter_error', message: 'not filtered' } };\n",
};

function check(changes: Record<string, string>): { status: number | null; output: string } {
  const root = mkdtempSync(join(tmpdir(), 'easel-check-imports-'));
  roots.push(root);
  for (const [path, text] of Object.entries({ ...CLEAN, ...changes })) {
    mkdirSync(dirname(join(root, 'src', path)), { recursive: true });
    writeFileSync(join(root, 'src', path), text);
  }
  const run = spawnSync(process.execPath, [script], { cwd: root, encoding: 'utf8' });
  return { status: run.status, output: run.stdout + run.stderr };
}

function assertRefused(changes: Record<string, string>, expected: RegExp) {
  const { status, output } = check(changes);
  assert.equal(status, 1, output);
  assert.match(output, expected);
}

test('the clean tree passes, comments and the safety annotation included', () => {
  const { status, output } = check({});
  assert.equal(status, 0, output);
});

test('an import past a public index into the files behind it is refused', () => {
  assertRefused(
    { 'http/files.ts': "import { put } from '../storage/put.ts';\nexport const f = put;\n" },
    /http\/files\.ts imports storage\/put\.ts: import from storage\/index\.ts/,
  );
});

test('a folder without an "import from here" index may be imported file by file', () => {
  const { status, output } = check({
    'jobs/index.ts': "export { run } from './run.ts';\n",
    'jobs/run.ts': 'export const run = 1;\n',
    'http/files.ts': "import { run } from '../jobs/run.ts';\nexport const f = run;\n",
  });
  assert.equal(status, 0, output);
});

test('codec/ imports nothing but contract/', () => {
  assertRefused(
    { 'codec/encode.ts': "import { put } from '../storage/index.ts';\nexport const encode = put;\n" },
    /codec\/encode\.ts \(codec\/\) must not import storage\/index\.ts/,
  );
});

test('an ApiError built outside the catalogue is refused', () => {
  assertRefused(
    {
      'http/files.ts':
        "import { ApiError } from '../contract/errors.ts';\nexport const f = () => new ApiError('no');\n",
    },
    /http\/files\.ts builds an ApiError/,
  );
});

test('an error body written as an object literal outside the catalogue is refused', () => {
  assertRefused(
    {
      'http/files.ts':
        "export const f = () => ({\n  error: {\n    code: 'imageExpired',\n    message: 'gone',\n  },\n});\n",
    },
    /http\/files\.ts builds an error body/,
  );
});
