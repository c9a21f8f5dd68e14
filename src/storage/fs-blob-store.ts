/**
 * BlobStore on the local file system: key "images/<id>.png" is the file <root>/images/<id>.png.
 * The embedded default (docs/layers.md, "Ports"); an S3 adapter follows the same port.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import type { BlobStore } from './blob-store.ts';

export class FsBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    const path = this.pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    // Write beside the target and rename: readers (and the file route) see the old bytes or the
    // new bytes, never half a file. The dot prefix keeps temp files out of keys().
    const temp = join(dirname(path), `.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await writeFile(temp, bytes);
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async *keys(): AsyncIterable<string> {
    yield* walk(this.root, '');
  }

  /**
   * Unix seconds at which the key was last written, or null when it does not exist. Not part of
   * the BlobStore port; the sweeper uses it when present to spare bytes that are still new.
   */
  async lastModified(key: string): Promise<number | null> {
    try {
      return Math.floor((await stat(this.pathOf(key))).mtimeMs / 1000);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /**
   * Keys come from our own code, but a key is a path: refuse anything that could leave the root.
   * Segments may not start with a dot, which rules out "..", "." and our own temp files.
   */
  private pathOf(key: string): string {
    const segments = key.split('/');
    const bad =
      key.length === 0 ||
      key.includes('\\') ||
      key.includes('\0') ||
      segments.some((s) => s.length === 0 || s.startsWith('.') || s.includes(':'));
    if (bad) throw new Error(`Invalid blob key: ${JSON.stringify(key)}`);
    return join(this.root, ...segments);
  }
}

async function* walk(dir: string, prefix: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    // A root that was never written to holds no keys.
    if (isMissing(error)) return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const key = prefix + entry.name;
    if (entry.isDirectory()) yield* walk(join(dir, entry.name), `${key}/`);
    else if (entry.isFile()) yield key;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
