// Fails when code, tests, tools or docs cite a document that is not in this repository: a section
// sign followed by a number, private reference notes, design or style files kept elsewhere, numbered pitfalls.
// What the code relies on lives in docs/ (diffusion.md, schedulers.md, azure-api.md, layers.md …),
// so a comment points there instead. Section signs after an RFC number ("RFC 9110 §9.3.7") are
// public citations and allowed. The patterns are spelled so that this file does not match itself.
// Usage: node tools/check-references.mjs [repository root]   (default: the current directory)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? '.');
const SCANNED = ['src', 'test', 'tools', 'bench', 'docs', 'bin', 'eval', 'README.md'];
const TEXT = /\.(ts|mts|js|mjs|cjs|md|py|sh|json|jsonl|html|css|txt|ya?ml)$/;

const RULES = [
  {
    pattern: /(?<!RFC \d+ )\u00a7\s*\d/,
    why: 'a section sign cites a document outside the repository; point into docs/ instead',
  },
  {
    pattern: /\breference[/](?:azure|onnx)|shared[/]reference/,
    why: 'cites a private reference note; point into docs/ instead',
  },
  { pattern: /azure[-]images[-]api|onnx[-]diffusion/, why: 'names a private reference note; point into docs/ instead' },
  {
    pattern: /\b(?:DESIGN|STYLE)[.]md\b/,
    why: 'names a design or style file that is not in the repository; point into docs/ instead',
  },
  {
    pattern: /\bpitfall\s+\d/i,
    why: 'a numbered pitfall of a document outside the repository; state the fact instead',
  },
];

function* walk(path) {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return;
  }
  if (stats.isFile()) {
    if (TEXT.test(path)) yield path;
    return;
  }
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    yield* walk(join(path, entry.name));
  }
}

const problems = [];
for (const top of SCANNED) {
  for (const file of walk(join(root, top))) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const { pattern, why } of RULES) {
        const match = pattern.exec(line);
        if (match) problems.push(`${relative(root, file)}:${i + 1}: "${match[0]}": ${why}`);
      }
    });
  }
}

if (problems.length > 0) {
  console.error(`check-references: ${problems.length} citation(s) of documents outside the repository:`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log('check-references: no citations of documents outside the repository');
