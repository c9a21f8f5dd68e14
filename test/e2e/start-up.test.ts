// `npm start` as a new user meets it: a taken port, the first key, the playground's address, and
// log lines that a person can read on a terminal and a machine can read elsewhere.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { COMPILED_SERVE, serverScope, stopServer } from './helpers.ts';

const { newDataDir, start } = serverScope('easel-start-');

/** `easel serve` that is expected to stop by itself: its exit code and output. */
function serveUntilExit(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, COMPILED_SERVE, {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

const KEY_PRINTED = /A new API key was generated[^\n]*\n\s*\n\s*([0-9a-f]{32})\s/;

describe('npm start', () => {
  it('on a taken port: exits 1 naming the port and the PORT setting, keeps no key; the next start prints and saves one', async () => {
    const dataDir = newDataDir();
    const taken = await occupyPort();
    try {
      const failed = await serveUntilExit({ EASEL_DATA_DIR: dataDir, PORT: String(taken.port) });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(
        failed.stderr,
        new RegExp(`^easel: port ${taken.port} on 127\\.0\\.0\\.1 is already in use .*PORT.*EASEL_CONFIG`, 'm'),
      );
      assert.doesNotMatch(failed.stdout, /A new API key/);
      assert.ok(!existsSync(join(dataDir, 'api-keys.json')), 'a start that failed saved no key');
    } finally {
      taken.server.close();
    }

    const ok = await start({ EASEL_DATA_DIR: dataDir });
    const printed = KEY_PRINTED.exec(ok.stdout());
    assert.ok(printed, `the first successful start prints the key:\n${ok.stdout()}`);
    assert.deepEqual((JSON.parse(readFileSync(join(dataDir, 'api-keys.json'), 'utf8')) as { keys: string[] }).keys, [
      printed[1],
    ]);
    assert.ok(ok.stdout().includes(`Playground: ${ok.base}/`), ok.stdout());
    const answer = await fetch(`${ok.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': printed[1]! },
      body: JSON.stringify({ prompt: 'a first key' }),
    });
    assert.equal(answer.status, 200);
  });

  it('a second server on the same data directory stops (exit 1) naming the address of the one that runs', async () => {
    const dataDir = newDataDir();
    const first = await start({ EASEL_DATA_DIR: dataDir });
    const second = await serveUntilExit({ EASEL_DATA_DIR: dataDir, PORT: '0' });
    assert.equal(second.code, 1, second.stderr);
    assert.ok(
      second.stderr.includes(
        `The data directory ${dataDir} is in use by another easel server (it serves ${first.base}).`,
      ),
      second.stderr,
    );
  });

  it('a later start shows the playground URL and where the saved key is, not the key', async () => {
    const dataDir = newDataDir();
    const first = await start({ EASEL_DATA_DIR: dataDir });
    const key = KEY_PRINTED.exec(first.stdout())![1]!;
    await stopServer(first, 'SIGTERM');
    const second = await start({ EASEL_DATA_DIR: dataDir });
    assert.ok(second.stdout().includes(`Playground: ${second.base}/`));
    assert.ok(second.stdout().includes(`API key: the one saved in ${join(dataDir, 'api-keys.json')}`), second.stdout());
    assert.ok(!second.stdout().includes(key));
  });

  it('logs JSON lines when stdout is not a terminal, readable lines with EASEL_LOG_FORMAT=pretty; another value stops the start (exit 78)', async () => {
    const json = await start({ EASEL_DATA_DIR: newDataDir(), EASEL_LOG_LEVEL: 'info' });
    const listening = json
      .stdout()
      .split('\n')
      .find((line) => line.includes('easel listening on'));
    assert.ok(listening, json.stdout());
    assert.equal((JSON.parse(listening) as { msg: string }).msg, `easel listening on ${json.base}`);

    const pretty = await start({ EASEL_DATA_DIR: newDataDir(), EASEL_LOG_LEVEL: 'info', EASEL_LOG_FORMAT: 'pretty' });
    const line = pretty
      .stdout()
      .split('\n')
      .find((l) => l.includes('easel listening on'));
    assert.ok(line, pretty.stdout());
    assert.match(line, /^\[\d\d:\d\d:\d\d\] INFO: easel listening on http:.* {"address":/);
    assert.ok(
      !pretty
        .stdout()
        .split('\n')
        .some((l) => l.startsWith('{')),
      'no JSON lines',
    );

    const bad = await serveUntilExit({ EASEL_DATA_DIR: newDataDir(), PORT: '0', EASEL_LOG_FORMAT: 'xml' });
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /EASEL_LOG_FORMAT must be "json" or "pretty", got "xml"/);
  });
});
