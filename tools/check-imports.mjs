// Checks the import graph of src/: no cycles, and the layer rules of docs/layers.md
// (engines/ never imports http/; contract/ imports nothing but itself).
// Hand-written because it is 60 lines; madge and dependency-cruiser pull in dozens of packages.
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname, resolve, relative } from 'node:path';

const root = resolve('src');
const files = [];
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
  }
})(root);

const importRe = /^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]/gm;
const graph = new Map();
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const deps = [];
  for (const m of text.matchAll(importRe)) {
    // `import type` is erased at run time but still counts: it couples the modules.
    deps.push(resolve(dirname(file), m[1] ?? m[2]));
  }
  graph.set(file, deps);
}

const problems = [];
const rel = (p) => relative(root, p);
const layer = (p) => rel(p).split('/')[0];
const forbidden = { engines: ['http', 'cli'], models: ['http', 'cli'], contract: ['http', 'jobs', 'engines', 'storage', 'safety', 'cli', 'config'], storage: ['http'], jobs: ['http'], safety: ['http'] };
for (const [file, deps] of graph) {
  for (const dep of deps) {
    if (!graph.has(dep)) problems.push(`${rel(file)} imports missing ${rel(dep)}`);
    if ((forbidden[layer(file)] ?? []).includes(layer(dep))) problems.push(`${rel(file)} (${layer(file)}/) must not import ${rel(dep)}`);
  }
}

const state = new Map(); // 1 = on stack, 2 = done
const stack = [];
function visit(node) {
  state.set(node, 1);
  stack.push(node);
  for (const dep of graph.get(node) ?? []) {
    if (state.get(dep) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(dep)), dep].map(rel).join(' -> ')}`);
    else if (!state.has(dep) && graph.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(node, 2);
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`imports ok: ${files.length} files, no cycles`);
