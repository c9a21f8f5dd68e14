// tools/check-references.mjs fails on citations of documents outside the repository and lets
// public citations through. The forbidden strings are assembled at run time so that this file does
// not trip the check itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';

const SCRIPT = resolve('tools/check-references.mjs');
const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

/** Runs the check on a repository holding `src/a.ts` with `line` in it. */
async function check(line: string): Promise<{ status: number | null; output: string }> {
  const root = await mkdtemp(join(tmpdir(), 'easel-check-references-'));
  roots.push(root);
  await mkdir(join(root, 'src'));
  await writeFile(join(root, 'src/a.ts'), `// first line\n${line}\n`);
  const result = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

const SECTION = '\u00a7';

const FORBIDDEN: Array<[string, string]> = [
  ['a bare section number', `// the penultimate hidden state (${SECTION}1.4)`],
  ['a section number with a space', `// see ${SECTION} 3.1`],
  ['the diffusion notes by name', `// exporters disagree (onnx-${'diffusion'}.md)`],
  ['the Azure notes by path', `// see ${'reference'}/azure-images-${'api'}.md`],
  ['the design file', `// the layer rules of ${'DESIGN'}.md`],
  ['the style file', `// as ${'STYLE'}.md says`],
  ['a numbered pitfall', `// decode one at a time (${'pitfall'} 6)`],
];

for (const [what, line] of FORBIDDEN) {
  test(`fails on ${what}, naming the file and line`, async () => {
    const { status, output } = await check(line);
    assert.equal(status, 1, output);
    assert.match(output, /src\/a\.ts:2:/);
  });
}

const ALLOWED: Array<[string, string]> = [
  ['an RFC section', `// a plain OPTIONS request (RFC 9110 ${SECTION}9.3.7)`],
  ['a public API reference URL', '// https://platform.openai.com/docs/api-reference/moderations'],
  ['a pointer into docs/', '// (docs/diffusion.md, "SDXL conditioning")'],
];

for (const [what, line] of ALLOWED) {
  test(`passes ${what}`, async () => {
    const { status, output } = await check(line);
    assert.equal(status, 0, output);
  });
}

test('passes this repository', () => {
  const result = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
