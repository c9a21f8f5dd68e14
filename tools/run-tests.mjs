// Runs every test/**/*.test.ts with node's test runner through the tsx loader.
// Node 20's `--test` takes no glob patterns, so the files are listed here.
// Usage: node tools/run-tests.mjs [--exclude substring …] [substring …]
//   substring: only files whose path contains one; --exclude: leave out files whose path contains it.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.name.endsWith('.test.ts')) yield path;
  }
}

const filters = [];
const excludes = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--exclude') excludes.push(args[++i] ?? '');
  else filters.push(args[i]);
}
const files = [...walk('test')]
  .sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !excludes.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The e2e and CLI tests start the compiled server (dist/), as `npm start` does: build it first
// (incremental: quick when nothing changed).
if (files.some((f) => f.startsWith(join('test', 'e2e')) || f.startsWith(join('test', 'cli')))) {
  const build = spawnSync(process.execPath, ['tools/build.mjs'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
