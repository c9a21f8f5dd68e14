// The Azure python quickstarts (requests + PIL) run for real with Debian's /usr/bin/python3 against
// a server on 127.0.0.1. CI must install python3-requests and python3-pil; locally the suite skips
// with a message when they are missing, in CI it fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { decode, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { PNG_MAGIC, startListening, tempDir } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPTS = resolve('test/e2e/python');

function pythonProblem(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import requests, PIL'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} cannot run (${probe.error.message})`;
  if (probe.status !== 0) return `${PYTHON} lacks requests or PIL: ${probe.stderr.trim().split('\n').at(-1)}`;
  return null;
}

const problem = pythonProblem();
const INSTALL_HINT = 'apt-get install -y python3-requests python3-pil';

if (problem && process.env.CI) {
  it('the python quickstarts need /usr/bin/python3 with requests and PIL', () => {
    assert.fail(`${problem}. Install them with: ${INSTALL_HINT}`);
  });
}

/** Run a script in `cwd` without blocking the event loop (the server answers from this process). */
function runPython(script: string, cwd: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(PYTHON, [join(SCRIPTS, script)], {
      cwd,
      env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? cwd, LANG: 'C.UTF-8', NO_PROXY: '*', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

async function assertPng(path: string, width: number, height: number) {
  const bytes = readFileSync(path);
  assert.deepEqual(bytes.subarray(0, 4), PNG_MAGIC, `${path} is a PNG`);
  const image = await decode(bytes);
  assert.deepEqual([image.width, image.height], [width, height], path);
}

describe(
  'Azure python quickstarts (requests)',
  { skip: problem && !process.env.CI ? `${problem}; to run them: ${INSTALL_HINT}` : false },
  () => {
    let app: TestApp;
    let base: string;
    const dirs: string[] = [];

    before(async () => {
      ({ app, base } = await startListening());
    });
    after(async () => {
      await app?.dispose();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    /** The endpoint as the Azure portal shows it: scheme, host, and a trailing slash. */
    const portalEndpoint = () => `${base}/`;
    const workDir = () => {
      const dir = tempDir('easel-python-');
      dirs.push(dir);
      return dir;
    };
    const explain = (run: { code: number | null; stdout: string; stderr: string }) =>
      `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;

    it('gpt-image-1 tab: generate, save, then edit the saved file', async () => {
      const cwd = workDir();
      const run = await runPython('gpt_image_quickstart.py', cwd, {
        AZURE_OPENAI_ENDPOINT: portalEndpoint(),
        AZURE_OPENAI_API_KEY: TEST_KEY,
      });
      assert.equal(run.code, 0, explain(run));
      assert.match(run.stdout, /Image saved to: 'generated_image_1\.png'/);
      assert.match(run.stdout, /Image saved to: 'edited_image_1\.png'/);
      assert.deepEqual(readdirSync(cwd).sort(), ['edited_image_1.png', 'generated_image_1.png']);
      await assertPng(join(cwd, 'generated_image_1.png'), 1024, 1024);
      await assertPng(join(cwd, 'edited_image_1.png'), 1024, 1024);
    });

    it('DALL-E 3 tab: generate, print the url, download it', async () => {
      const cwd = workDir();
      // The script writes f"{api_base}/openai/…", and its text warns against a doubled '/': so the
      // endpoint goes in without the portal's trailing slash (see the next test for what happens with it).
      const run = await runPython('dalle3_quickstart.py', cwd, {
        AZURE_OPENAI_ENDPOINT: base,
        AZURE_OPENAI_API_KEY: TEST_KEY,
      });
      assert.equal(run.code, 0, explain(run));
      const url = run.stdout.split('\n')[0]!;
      assert.ok(url.startsWith(`${base}/files/`), url);
      await assertPng(join(cwd, 'dalle3_image.png'), 1024, 1024);
    });

    it("DALL-E 3 tab with the portal's trailing slash: '//openai/…' is Azure's 404, so the script stops", async () => {
      const cwd = workDir();
      const run = await runPython('dalle3_quickstart.py', cwd, {
        AZURE_OPENAI_ENDPOINT: portalEndpoint(),
        AZURE_OPENAI_API_KEY: TEST_KEY,
      });
      assert.notEqual(run.code, 0, explain(run));
      assert.match(run.stderr, /KeyError: 'data'/);
      const response = await fetch(`${base}//openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`, {
        method: 'POST',
        headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x' }),
      });
      assert.equal(response.status, 404);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, '404');
    });

    it('DALL-E 2: submit, poll operation-location honouring retry-after, download both images', async () => {
      const cwd = workDir();
      const run = await runPython('dalle2_quickstart.py', cwd, {
        AZURE_OPENAI_ENDPOINT: portalEndpoint(),
        AZURE_OPENAI_API_KEY: TEST_KEY,
      });
      assert.equal(run.code, 0, explain(run));
      assert.match(run.stdout, /'status': 'notRunning'/);
      assert.deepEqual(readdirSync(cwd).sort(), ['dalle2_image_1.png', 'dalle2_image_2.png']);
      await assertPng(join(cwd, 'dalle2_image_1.png'), 512, 512);
      await assertPng(join(cwd, 'dalle2_image_2.png'), 512, 512);
    });

    it('a wrong key: the DALL-E 2 script reports the 401 and exits non-zero', async () => {
      const run = await runPython('dalle2_quickstart.py', workDir(), {
        AZURE_OPENAI_ENDPOINT: portalEndpoint(),
        AZURE_OPENAI_API_KEY: 'wrong-key-wrong',
      });
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /submit failed: 401 .*"code":"401"/);
    });
  },
);
