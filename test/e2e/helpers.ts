import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { startTestApp, type TestApp } from '../helpers/app.ts';

export const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
export const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);

/** A real app listening on an ephemeral port of 127.0.0.1, and its base URL (no trailing slash). */
export async function startListening(
  options: Parameters<typeof startTestApp>[0] = {},
): Promise<{ app: TestApp; base: string }> {
  const app = await startTestApp(options);
  const address = await app.server.listen({ host: '127.0.0.1', port: 0 });
  return { app, base: address.replace(/\/+$/, '') };
}

/** Poll `probe` until it returns a value other than undefined, or fail after `deadlineMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  deadlineMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'easel-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** What `npm start` runs. */
export const COMPILED_SERVE = ['dist/cli/index.js', 'serve'];

export interface ServerProcess {
  child: ChildProcess;
  base: string;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code or signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `npm start` without npm: `node dist/cli/index.js serve` (the compiled build users run; the test
 * runner builds dist/ first) on a free port, waiting until /healthz answers. `env` adds to (and may
 * override) a minimal environment; `entry` replaces the script (a test's own TypeScript file, which
 * calls serve() with an engine it controls, runs through tsx).
 */
export async function spawnServer(
  env: Record<string, string>,
  entry: string[] = COMPILED_SERVE,
): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...(entry[0]!.endsWith('.ts') ? ['--import', 'tsx'] : []), ...entry], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      EASEL_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const base = `http://127.0.0.1:${port}`;
  let ended = false;
  void exited.then(() => (ended = true));
  try {
    await waitFor(
      'the server process to answer /healthz',
      async () => {
        if (ended) throw new Error(`the server exited before answering.\nstdout:\n${out}\nstderr:\n${err}`);
        try {
          return (await fetch(`${base}/healthz`)).ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      30_000,
      100,
    );
  } catch (error) {
    // Never leave a half-started server behind.
    if (!ended) child.kill('SIGKILL');
    throw error;
  }
  return { child, base, stdout: () => out, stderr: () => err, exited };
}

/** SIGKILL (or `signal`) a server process and wait for it to be gone. */
export async function stopServer(server: ServerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill(signal);
  await server.exited;
}

/** GET a URL with fetch and return status and bytes. */
/**
 * The data directories and `easel serve` processes of one test file: made on demand, and stopped
 * and removed once the file's tests have run.
 */
export function serverScope(prefix: string): {
  newDataDir(): string;
  start(env: Record<string, string>): Promise<ServerProcess>;
} {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const server of servers) await stopServer(server);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    newDataDir() {
      const dir = tempDir(prefix);
      dirs.push(dir);
      return dir;
    },
    async start(env) {
      const server = await spawnServer(env);
      servers.push(server);
      return server;
    },
  };
}

export async function download(url: string): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const response = await fetch(url);
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    bytes: Buffer.from(await response.arrayBuffer()),
  };
}

export { GatedEngine, UUID_RE } from '../helpers/engines.ts';
