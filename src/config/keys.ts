import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ApiKeys {
  keys: string[];
  /** Where the keys came from, for the start-up log. */
  source: 'EASEL_API_KEYS' | 'data directory';
  /**
   * A key made just now and not saved yet: `saveGenerated` keeps it once the server listens, so a
   * start that fails (a taken port) never leaves a saved key that nobody was shown.
   */
  generated: string | null;
}

const KEYS_FILE = 'api-keys.json';

/**
 * Keys from EASEL_API_KEYS when set; otherwise the ones kept in the data directory, or on first
 * start a new one (32 hex characters, like an Azure key) that the caller saves with
 * `saveGeneratedKey` once it has shown it.
 */
export function resolveApiKeys(configured: string[], dataDir: string): ApiKeys {
  if (configured.length > 0) return { keys: configured, source: 'EASEL_API_KEYS', generated: null };
  const stored = readStoredKeys(dataDir);
  if (stored) return { keys: stored, source: 'data directory', generated: null };
  const key = newKey();
  return { keys: [key], source: 'data directory', generated: key };
}

/** Keeps a key that resolveApiKeys generated: the one the running server accepts. */
export function saveGeneratedKey(dataDir: string, key: string): void {
  writeStoredKeys(dataDir, [key]);
}

export function keysFilePath(dataDir: string): string {
  return join(dataDir, KEYS_FILE);
}

/** The generated keys kept in the data directory, oldest first; null when there are none yet. */
export function readStoredKeys(dataDir: string): string[] | null {
  const path = keysFilePath(dataDir);
  try {
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { keys?: unknown };
    if (Array.isArray(stored.keys) && stored.keys.length > 0 && stored.keys.every((k) => typeof k === 'string')) {
      return stored.keys as string[];
    }
    return null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    return null;
  }
}

/**
 * Rotation for generated keys: append a new key, keeping at most two, so clients can move to the
 * new key while the older one still works; the next rotation retires the older. A server reads the
 * file at start-up, so it accepts the new key after a restart.
 */
export function rotateStoredKeys(dataDir: string): { keys: string[]; added: string; retired: string[] } {
  const current = readStoredKeys(dataDir) ?? [];
  const added = newKey();
  const keys = [...current.slice(-1), added];
  const retired = current.slice(0, -1);
  writeStoredKeys(dataDir, keys);
  return { keys, added, retired };
}

function newKey(): string {
  return randomBytes(16).toString('hex');
}

/** Written to a temporary file and renamed, so a server starting meanwhile never reads half a file. */
function writeStoredKeys(dataDir: string, keys: string[]): void {
  mkdirSync(dataDir, { recursive: true });
  const path = keysFilePath(dataDir);
  writeFileSync(`${path}.tmp`, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
