import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ApiKeys {
  keys: string[];
  /** Where the keys came from, for the start-up log. */
  source: 'EASEL_API_KEYS' | 'data directory';
  /** A key made just now; print it once so the user can copy it. */
  generated: string | null;
}

const KEYS_FILE = 'api-keys.json';

/**
 * Keys from EASEL_API_KEYS when set; otherwise the ones kept in the data directory, generated on
 * first start (32 hex characters, like an Azure key).
 */
export function resolveApiKeys(configured: string[], dataDir: string): ApiKeys {
  if (configured.length > 0) return { keys: configured, source: 'EASEL_API_KEYS', generated: null };
  const path = join(dataDir, KEYS_FILE);
  try {
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { keys?: unknown };
    if (Array.isArray(stored.keys) && stored.keys.length > 0 && stored.keys.every((k) => typeof k === 'string')) {
      return { keys: stored.keys as string[], source: 'data directory', generated: null };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  const key = randomBytes(16).toString('hex');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path, JSON.stringify({ keys: [key] }, null, 2) + '\n', { mode: 0o600 });
  return { keys: [key], source: 'data directory', generated: key };
}
