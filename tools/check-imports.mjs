// Checks the import graph of src/: no cycles; the layer rules of docs/layers.md (engines/ never imports http/;
// contract/ imports nothing but itself; codec/ nothing but contract/); imports into a folder whose
// index.ts says "import from here" go through that index; and error envelopes are built only in
// the error catalogue (contract/errors.ts).
// Hand-written because it is 100 lines; madge and dependency-cruiser pull in dozens of packages.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve('src');
const files = [];
/** Folders whose index.ts is their public face: other folders import from the index only. */
const faces = [];
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
    if (e.name === 'index.ts' && /import from here/i.test(headerOf(readFileSync(p, 'utf8')))) faces.push(dir);
  }
})(root);

/** The comments before a file's first import or export. */
function headerOf(text) {
  const first = text.search(/^(?:import|export)\b/m);
  return first < 0 ? text : text.slice(0, first);
}

const importRe = /^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]/gm;
const graph = new Map();
const texts = new Map();
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  texts.set(file, text);
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
const forbidden = {
  engines: ['http', 'cli', 'storage'],
  models: ['http', 'cli'],
  contract: ['http', 'jobs', 'engines', 'storage', 'safety', 'cli', 'config'],
  storage: ['http', 'engines', 'safety', 'cli', 'models'],
  jobs: ['http'],
  safety: ['http'],
};
// codec/ turns pixels into bytes and back for everyone, so it knows nothing of who asks.
const only = { codec: ['codec', 'contract'] };
const inside = (file, dir) => file.startsWith(dir + sep);
for (const [file, deps] of graph) {
  for (const dep of deps) {
    if (!graph.has(dep)) problems.push(`${rel(file)} imports missing ${rel(dep)}`);
    const from = layer(file);
    if ((forbidden[from] ?? []).includes(layer(dep)) || (only[from] && !only[from].includes(layer(dep)))) {
      problems.push(`${rel(file)} (${from}/) must not import ${rel(dep)}`);
    }
    for (const face of faces) {
      if (inside(dep, face) && !inside(file, face) && dep !== join(face, 'index.ts')) {
        problems.push(`${rel(file)} imports ${rel(dep)}: import from ${rel(join(face, 'index.ts'))}`);
      }
    }
  }
}

// Error envelopes come from the catalogue: no `new ApiError(` outside contract/, and no object
// literal `error: { … code: … }` outside contract/ and safety/ (whose `error` is the content-filter
// annotation's FilterError, a field of content_filter_results, not an envelope). Comments are
// skipped, so documentation may show the shape.
const envelope = /\berror\s*:\s*\{[^{}]*?\bcode\s*:/;
for (const [file, text] of texts) {
  if (layer(file) === 'contract') continue;
  const code = text.replace(/\/\*[\s\S]*?\*\/|(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
  if (/\bnew\s+ApiError\s*\(/.test(code))
    problems.push(`${rel(file)} builds an ApiError: add a builder to contract/errors.ts`);
  else if (layer(file) !== 'safety' && envelope.test(code))
    problems.push(`${rel(file)} builds an error body: use contract/errors.ts`);
}

const state = new Map(); // 1 = on stack, 2 = done
const stack = [];
function visit(node) {
  state.set(node, 1);
  stack.push(node);
  for (const dep of graph.get(node) ?? []) {
    if (state.get(dep) === 1)
      problems.push(`import cycle: ${[...stack.slice(stack.indexOf(dep)), dep].map(rel).join(' -> ')}`);
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
