// The README's configuration reference and the schema cannot drift: every key of the config file
// and every environment variable the schema knows is documented in "## Configuration", and every
// key or variable documented there exists in the schema.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { ConfigFileSchema, ENV_ONLY, ENV_SETTINGS } from '../../src/config/schema.ts';

interface Node {
  type?: string;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  items?: Node;
}

/**
 * Dotted paths of every key (`deployments[].diffusion.steps`); a union with a plain alternative (a threshold word or an
 * object) counts as one key.
 */
function keyPaths(node: Node, path = ''): string[] {
  const objects = node.anyOf
    ? node.anyOf.every((b) => b.type === 'object')
      ? node.anyOf
      : []
    : node.type === 'object'
      ? [node]
      : [];
  if (node.type === 'array' && node.items?.type === 'object') return keyPaths(node.items, `${path}[]`);
  if (node.type === 'array' && node.items?.anyOf) return keyPaths(node.items, `${path}[]`);
  const keys = new Set<string>();
  for (const object of objects) {
    for (const [key, child] of Object.entries(object.properties ?? {})) {
      const at = path ? `${path}.${key}` : key;
      keys.add(at);
      for (const deeper of keyPaths(child, at)) keys.add(deeper);
    }
  }
  return [...keys];
}

function configurationSection(): string {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf('\n## Configuration\n');
  assert.ok(start >= 0, 'README has a "## Configuration" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The first cell of each row of the table under this heading line, split into its `code` names. */
function tableNames(section: string, header: RegExp): string[] {
  const lines = section.split('\n');
  const first = lines.findIndex((l) => header.test(l));
  assert.ok(first >= 0, `a table with the header ${header}`);
  const names: string[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const cell = line.split('|')[1] ?? '';
    for (const [, name] of cell.matchAll(/`([^`]+)`/g)) names.push(name!);
  }
  return names;
}

test('every environment variable of the schema is in the README table of variables, and only those', () => {
  const documented = tableNames(configurationSection(), /^\| variable \|/).sort();
  const known = [...Object.keys(ENV_SETTINGS), ...Object.keys(ENV_ONLY)].sort();
  assert.deepEqual(documented, known);
});

test('every key of the config file is in the README table of keys, and only those', () => {
  const documented = tableNames(configurationSection(), /^\| key \|/).sort();
  assert.deepEqual(documented, keyPaths(ConfigFileSchema as Node).sort());
});
