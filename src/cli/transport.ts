// How `easel generate` and `easel edit` reach the API: over HTTP to a running server (--server,
// EASEL_URL), or in this process through app.server.inject: the same routes, validation and
// answers as HTTP, without a port. Either way the request is the Azure route a client would call.
import { mkdirSync } from 'node:fs';

import { pino } from 'pino';

import { type App, createApp } from '../app.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { readStoredKeys } from '../config/keys.ts';
import { type FamilyId, familyOf } from '../contract/families.ts';
import { DataDirInUseError, DataDirLock } from '../storage/index.ts';
import { clientUrl } from './address.ts';
import { CliError, EXIT } from './program.ts';

export const API_VERSION = '2025-04-01-preview';

export interface ApiAnswer {
  status: number;
  body: Buffer;
}

export interface Transport {
  /** Where the requests go, for messages. */
  readonly where: string;
  /** The family of a deployment when known (in process), else a guess from its name. */
  familyOf(deployment: string): FamilyId | undefined;
  post(path: string, headers: Record<string, string>, payload: Buffer): Promise<ApiAnswer>;
  /** An image URL from an answer (when a server answered with links instead of b64_json). */
  download(url: string): Promise<Buffer>;
  close(): Promise<void>;
}

export interface TransportFlags {
  server?: string;
  key?: string;
}

export async function openTransport(env: NodeJS.ProcessEnv, flags: TransportFlags): Promise<Transport> {
  const server = flags.server ?? env.EASEL_URL;
  if (server) return httpTransport(env, server, flags.key);
  // A server that owns the configured data directory recorded where it listens: talk to it.
  const config = loadConfig(env);
  mkdirSync(config.dataDir, { recursive: true });
  const holder = DataDirLock.holder(config.dataDir);
  if (holder?.url)
    return httpTransport(env, holder.url, flags.key, {
      whose: ` (the server running on ${config.dataDir})`,
      ownDataDir: true,
    });
  if (holder) throw inUse(config);
  return inProcessTransport(env);
}

/**
 * `ownDataDir`: the server is the one that holds the configured data directory, so its keys are this directory's
 * whatever its address.
 */
function httpTransport(
  env: NodeJS.ProcessEnv,
  server: string,
  flagKey: string | undefined,
  found: { whose: string; ownDataDir: boolean } = { whose: '', ownDataDir: false },
): Transport {
  let base: URL;
  try {
    base = new URL(server.endsWith('/') ? server : `${server}/`);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new CliError(`--server (or EASEL_URL) must be an http(s) URL, got ${JSON.stringify(server)}`, EXIT.usage);
  }
  const key = flagKey ?? env.EASEL_API_KEY ?? localKey(env, base, found.ownDataDir);
  if (!key) {
    throw new CliError(`no API key for ${base.origin}: pass --key or set EASEL_API_KEY`, EXIT.usage);
  }
  const unreachable = (error: unknown) =>
    new CliError(
      `cannot reach ${base.origin}: ${(error as { cause?: Error }).cause?.message ?? (error as Error).message}`,
    );
  return {
    where: `at ${base.origin}${found.whose}`,
    familyOf: (deployment) => familyOf(deployment),
    async post(path, headers, payload) {
      const response = await fetch(new URL(path.replace(/^\//, ''), base), {
        method: 'POST',
        headers: { ...headers, 'api-key': key },
        body: new Uint8Array(payload),
      }).catch((error: unknown) => {
        throw unreachable(error);
      });
      return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
    },
    async download(url) {
      const response = await fetch(url).catch((error: unknown) => {
        throw unreachable(error);
      });
      if (!response.ok) throw new CliError(`downloading ${url} failed: HTTP ${response.status}`);
      return Buffer.from(await response.arrayBuffer());
    },
    async close() {},
  };
}

/**
 * A server on this machine most likely uses this data directory's keys: EASEL_API_KEYS, else the
 * generated file. The first stored key is the one a server started before the last rotation still
 * accepts (rotation appends).
 */
function localKey(env: NodeJS.ProcessEnv, base: URL, ownDataDir: boolean): string | undefined {
  if (!ownDataDir && !['localhost', '127.0.0.1', '[::1]'].includes(base.hostname)) return undefined;
  const config = loadConfig(env);
  return config.apiKeys[0] ?? readStoredKeys(config.dataDir)?.[0];
}

async function inProcessTransport(env: NodeJS.ProcessEnv): Promise<Transport> {
  const config = loadConfig(env);
  let app: App;
  try {
    app = await createApp(config, { logger: pino({ level: 'silent' }) });
  } catch (error) {
    // A server took the directory since the check above.
    if (error instanceof DataDirInUseError) throw inUse(config);
    throw error;
  }
  const key = app.apiKeys.keys[0]!;
  await app.modelsLoaded;
  return {
    where: `in process, data directory ${config.dataDir}`,
    familyOf: (deployment) => app.services.deployments.get(deployment)?.family.id ?? familyOf(deployment),
    async post(path, headers, payload) {
      const response = await app.server.inject({
        method: 'POST',
        url: path,
        headers: { ...headers, 'api-key': key },
        payload,
      });
      return { status: response.statusCode, body: response.rawPayload };
    },
    async download(url) {
      const { pathname, search } = new URL(url);
      const response = await app.server.inject({ method: 'GET', url: `${pathname}${search}` });
      if (response.statusCode !== 200) throw new CliError(`downloading ${url} failed: HTTP ${response.statusCode}`);
      return response.rawPayload;
    },
    close: () => app.close(),
  };
}

/**
 * Only one server may own a data directory; one that recorded no URL (still starting, or an older
 * easel) is named with the configured address instead.
 */
function inUse(config: Config): CliError {
  return new CliError(
    `the data directory ${config.dataDir} is in use by a running easel server; ` +
      `send the request to it with --server ${clientUrl(config.host, config.port)} (or stop it, or set EASEL_DATA_DIR)`,
  );
}
