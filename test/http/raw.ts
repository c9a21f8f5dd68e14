/**
 * Helpers for tests that go below inject(): raw sockets (the HTTP parser's errors, timeouts) and a
 * real app whose JSON log lines are kept for assertions.
 */
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';

import { pino } from 'pino';

import { createApp } from '../../src/app.ts';
import { type ConfigOverrides, loadConfig } from '../../src/config/index.ts';
import type { Engine } from '../../src/engines/engine.ts';
import { tempDir } from '../e2e/helpers.ts';
import { SECOND_KEY, TEST_KEY } from '../helpers/app.ts';

/**
 * Write one request on a fresh connection and read until the server closes it. `halfClose` ends the
 * sending side after the bytes, as a client that gives up does (truncated input then reaches EOF).
 */
export function rawRequest(base: string, data: string | Buffer, halfClose = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = openSocket(base);
    let out = '';
    socket.on('data', (chunk: string) => (out += chunk));
    socket.on('close', () => resolve(out));
    socket.on('error', (error) => (out ? resolve(out) : reject(error)));
    if (halfClose) socket.end(data);
    else socket.write(data);
  });
}

export function openSocket(base: string): Socket {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  socket.setEncoding('latin1');
  return socket;
}

/** Status line, headers (lower-cased names) and body of a raw HTTP/1.1 answer. */
export function parseRaw(answer: string): { status: number; headers: Record<string, string>; body: string } {
  // An interim 100 Continue comes before the answer itself.
  if (/^HTTP\/1\.1 1\d\d /.test(answer) && answer.indexOf('\r\n\r\n') > 0) {
    const next = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    if (next.startsWith('HTTP/')) return parseRaw(next);
  }
  const end = answer.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = answer.slice(0, end < 0 ? answer.length : end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  // The first answer only: a connection may carry a second one (a parser error after a reply).
  const rest = end < 0 ? '' : answer.slice(end + 4);
  const length = headers['content-length'] === undefined ? rest.length : Number(headers['content-length']);
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.slice(0, length) };
}

export interface LoggedApp {
  app: Awaited<ReturnType<typeof createApp>>;
  base: string;
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A listening app on 127.0.0.1 whose log lines (level info) are collected in `lines`. */
export async function startLogged(
  options: { config?: ConfigOverrides; env?: Record<string, string>; engine?: Engine } = {},
): Promise<LoggedApp> {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const dataDir = tempDir('easel-raw-');
  const config = loadConfig(
    { EASEL_DATA_DIR: dataDir, EASEL_API_KEYS: `${TEST_KEY},${SECOND_KEY}`, ...options.env },
    options.config,
  );
  const app = await createApp(config, { logger: pino({ level: 'info' }, stream), engine: options.engine });
  const base = (await app.server.listen({ host: '127.0.0.1', port: 0 })).replace(/\/+$/, '');
  return {
    app,
    base,
    lines,
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
