// Builds dist/ from src/: tsc (tsconfig.build.json) compiles the TypeScript, then the files read at
// run time beside the code (playground assets, lexicon.json) are copied next to the compiled
// modules, and compiled files whose source is gone are removed. `npm ci` runs it (prepare).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

// tsc's incremental build trusts its build info and does not notice compiled files that were deleted
// since: when a source's output is missing, the build starts over.
const sources = [...walk(SRC)];
const compiledOf = (source) => join(DIST, relative(SRC, source)).replace(/\.ts$/, '.js');
const compiled = sources.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
if (compiled.some((source) => !existsSync(compiledOf(source)))) rmSync(join(DIST, '.tsbuildinfo'), { force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);

// The worker bootstrap loads TypeScript through tsx: compiled workers start without it.
const runtimeOnly = (path) => path.endsWith('.ts') || path.endsWith('ts-worker-bootstrap.mjs');
for (const file of sources) {
  if (runtimeOnly(file)) continue;
  const target = join(DIST, relative(SRC, file));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
}
for (const file of walk(DIST)) {
  const rel = relative(DIST, file);
  if (rel === '.tsbuildinfo') continue;
  const source = join(SRC, rel.endsWith('.js') ? rel.replace(/\.js$/, '.ts') : rel);
  if (!existsSync(source) && !existsSync(join(SRC, rel))) rmSync(file);
}
