import assert from 'node:assert/strict';
import { test } from 'node:test';

import { compareVersions, isSupportedVersion, versionHasRoute } from '../../src/contract/api-versions.ts';

test('versions order by date, a preview before the GA of the same day', () => {
  assert.equal(compareVersions('2024-02-01', '2024-02-15-preview'), -1);
  assert.equal(compareVersions('2024-10-21', '2024-10-21'), 0);
  assert.equal(compareVersions('2025-04-01-preview', '2025-04-01'), -1);
});

test('known versions and newer well-formed ones are supported; others are not', () => {
  assert.equal(isSupportedVersion('2024-02-01'), true);
  assert.equal(isSupportedVersion('2023-06-01-preview'), true);
  assert.equal(isSupportedVersion('2026-03-01-preview'), true);
  assert.equal(isSupportedVersion('2022-12-01'), false);
  assert.equal(isSupportedVersion('2024-02-02'), false);
  assert.equal(isSupportedVersion('banana'), false);
});

test('DALL-E 2 operations exist before 2023-12-01-preview, edits from 2025-04-01-preview', () => {
  assert.equal(versionHasRoute('2023-06-01-preview', 'operations'), true);
  assert.equal(versionHasRoute('2024-02-01', 'operations'), false);
  assert.equal(versionHasRoute('2023-06-01-preview', 'generations'), false);
  assert.equal(versionHasRoute('2023-12-01-preview', 'generations'), true);
  assert.equal(versionHasRoute('2025-03-01-preview', 'edits'), false);
  assert.equal(versionHasRoute('2025-04-01-preview', 'edits'), true);
});
