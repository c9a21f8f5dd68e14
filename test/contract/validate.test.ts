import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiError } from '../../src/contract/errors.ts';
import { FAMILIES } from '../../src/contract/families.ts';
import { toImageRequest, validateParams } from '../../src/contract/validate.ts';

const rejects = (fn: () => unknown, code: string, param: string | null) =>
  assert.throws(fn, (e: unknown) => e instanceof ApiError && e.code === code && e.param === param);

test('defaults of each family are applied', () => {
  const dalle3 = toImageRequest(
    FAMILIES['dall-e-3'],
    'generation',
    'd3',
    validateParams(FAMILIES['dall-e-3'], 'generation', { prompt: 'x' }, 'json'),
  );
  assert.deepEqual(
    [dalle3.width, dalle3.height, dalle3.quality, dalle3.style, dalle3.responseFormat, dalle3.n],
    [1024, 1024, 'standard', 'vivid', 'url', 1],
  );
  const gpt = toImageRequest(
    FAMILIES['gpt-image-1'],
    'generation',
    'g',
    validateParams(FAMILIES['gpt-image-1'], 'generation', { prompt: 'x' }, 'json'),
  );
  assert.deepEqual(
    [gpt.width, gpt.height, gpt.quality, gpt.outputFormat, gpt.outputCompression, gpt.responseFormat],
    [1024, 1024, 'high', 'png', 100, 'b64_json'],
  );
});

test('multipart strings become numbers and booleans; JSON strings do not', () => {
  const values = validateParams(FAMILIES['gpt-image-1'], 'edit', { prompt: 'x', n: '3', stream: 'true' }, 'multipart');
  assert.equal(values.n, 3);
  assert.equal(values.stream, true);
  rejects(
    () => validateParams(FAMILIES['gpt-image-1'], 'generation', { prompt: 'x', n: '3' }, 'json'),
    'invalid_parameter',
    'n',
  );
});

test('prompt length counts characters, not UTF-16 units', () => {
  const emoji = '🎨'.repeat(1000); // 2000 UTF-16 units
  assert.doesNotThrow(() => validateParams(FAMILIES['dall-e-2'], 'generation', { prompt: emoji }, 'json'));
  rejects(
    () => validateParams(FAMILIES['dall-e-2'], 'generation', { prompt: emoji + 'a' }, 'json'),
    'invalid_parameter',
    'prompt',
  );
});

test('without a seed the same request gets the same seed; a different prompt another', () => {
  const make = (prompt: string) =>
    toImageRequest(
      FAMILIES['dall-e-3'],
      'generation',
      'd3',
      validateParams(FAMILIES['dall-e-3'], 'generation', { prompt }, 'json'),
    ).seed;
  assert.equal(make('a cat'), make('a cat'));
  assert.notEqual(make('a cat'), make('a dog'));
});
