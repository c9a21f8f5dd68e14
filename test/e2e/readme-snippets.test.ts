// The README's "Try it" snippets, run as written against a real server: the shell blocks (curl,
// the CLI, the node one-liner) in one bash session, then the `openai` TypeScript block. They are
// read from README.md at test time, so the README and this test cannot drift apart.
//
// Two things differ from a reader's machine, and only these: the server listens on a free port
// instead of 8080 (the address is replaced in the text), and `npx easel` runs this checkout's
// bin/easel.js from the scratch folder (as npx does in the repository's folder).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { decode } from '../helpers/app.ts';
import { type ServerProcess, spawnServer, stopServer, tempDir } from './helpers.ts';

const REPO = resolve('.');

/** The fenced blocks of the README between the heading `from` and the next heading of its level. */
export function readmeBlocks(readme: string, from: string): { lang: string; code: string }[] {
  const start = readme.indexOf(`\n${from}\n`);
  assert.ok(start >= 0, `README has a "${from}" section`);
  const level = from.split(' ')[0]!;
  const rest = readme.slice(start + from.length + 2);
  const end = rest.search(new RegExp(`^${level} `, 'm'));
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

describe('the README, "Try it", run as written', () => {
  let work: string;
  let server: ServerProcess;
  const blocks = readmeBlocks(readFileSync('README.md', 'utf8'), '## Try it');
  const asHere = (code: string) => code.replaceAll('http://127.0.0.1:8080', server.base);

  before(async () => {
    work = tempDir('easel-readme-');
    // The reader's folder is the repository: packages resolve from it.
    symlinkSync(join(REPO, 'node_modules'), join(work, 'node_modules'));
    mkdirSync(join(work, 'data'));
    // `npm start` in that folder: no EASEL_API_KEYS, data in ./data.
    server = await spawnServer({ EASEL_DATA_DIR: join(work, 'data') });
  });
  after(async () => {
    if (server) await stopServer(server, 'SIGTERM');
    rmSync(work, { recursive: true, force: true });
  });

  it('has shell blocks (curl, the CLI) and an openai TypeScript block', () => {
    assert.ok(blocks.filter((b) => b.lang === 'sh').length >= 3, JSON.stringify(blocks.map((b) => b.lang)));
    assert.equal(blocks.filter((b) => b.lang === 'ts').length, 1);
  });

  it('the shell blocks, in order, in one session: every command succeeds, no API error, the files they name exist', async () => {
    const script = [
      'set -euo pipefail',
      `npx() { if [ "$1" = easel ]; then shift; node ${JSON.stringify(join(REPO, 'bin', 'easel.js'))} "$@"; else command npx "$@"; fi; }`,
      ...blocks.filter((b) => b.lang === 'sh').map((b, i) => `echo "=== block ${i + 1}"\n${asHere(b.code)}`),
    ].join('\n');
    const result = await run('bash', ['-c', script], work, {});
    assert.equal(result.code, 0, `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.doesNotMatch(result.stdout, /"error"\s*:/, result.stdout);
    assert.match(result.stdout, /"revised_prompt"/, 'the DALL-E 3 curl answered');
    assert.match(result.stdout, /^operation-location: /im, 'the DALL-E 2 submit answered 202 with operation-location');
    for (const file of [
      'beach.png',
      'mask.png',
      'photo.jpg',
      'ball.png',
      'a-lighthouse-at-dawn-1.png',
      'bike.png',
      'as-a-watercolor-1.png',
      'shots/a-fox-in-the-snow-1.webp',
      'shots/a-fox-in-the-snow-2.webp',
    ]) {
      assert.ok(existsSync(join(work, file)), `${file} was written\n${result.stdout}\n${result.stderr}`);
    }
    const mask = await decode(readFileSync(join(work, 'mask.png')));
    const beach = await decode(readFileSync(join(work, 'beach.png')));
    assert.deepEqual(
      [mask.width, mask.height],
      [beach.width, beach.height],
      'the mask has the size of the picture it masks',
    );
    assert.equal(mask.data[(512 * mask.width + 512) * 4 + 3], 0, 'transparent in the middle');
    assert.equal(mask.data[3], 255, 'opaque at the corner');
    assert.equal((await decode(readFileSync(join(work, 'photo.jpg')))).format, 'jpeg');
    // The CLI talked to the running server (its data directory is the server's).
    assert.match(
      result.stderr,
      /Generating 1 image with gpt-image-1 at http:\/\/127\.0\.0\.1:\d+ \(the server running on /,
    );
  });

  it('the openai block, saved as try.mts and run with npx tsx: generates through both surfaces and streams', async () => {
    const ts = blocks.find((b) => b.lang === 'ts')!;
    writeFileSync(join(work, 'try.mts'), asHere(ts.code));
    const key = (JSON.parse(readFileSync(join(work, 'data', 'api-keys.json'), 'utf8')) as { keys: string[] }).keys[0]!;
    const result = await run('npx', ['--no-install', 'tsx', 'try.mts'], work, { AZURE_OPENAI_API_KEY: key });
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /image_generation\.partial_image\n/);
    assert.match(result.stdout, /image_generation\.completed\n/);
  });
});
