/**
 * BlobStore on the local file system: key "images/<id>.png" is the file <root>/images/<id>.png.
 * The embedded default (docs/layers.md, "Ports"); s3-blob-store.ts follows the same port.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import {
  type BlobEntry,
  type BlobPage,
  type BlobStore,
  DEFAULT_LIST_LIMIT,
  type ListOptions,
  type OpenedBlob,
} from './blob-store.ts';

export class FsBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    const path = this.pathOf(key);
    // Write beside the target and rename: readers (and the file route) see the old bytes or the
    // new bytes, never half a file. The dot prefix keeps temp files out of list().
    const temp = join(dirname(path), `.${randomBytes(8).toString('hex')}.tmp`);
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(temp, bytes);
        await rename(temp, path);
        return;
      } catch (error) {
        await rm(temp, { force: true });
        // A delete emptied and removed a folder of this key while it was being made or written
        // into (a job's folder, between this job's own put and delete): make it again.
        if (!isMissing(error) || attempt === 3) throw error;
      }
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

  /**
   * Removes the file, then the folders it leaves empty, as a bucket has no folders: each job's
   * `transient/<jobId>/` would otherwise stay behind as an empty folder. The top-level folders
   * (`images/`, `transient/` …) stay: were a delete to remove `transient/`, a put making
   * `transient/<id>/` at that moment (the same job's next partial image, or another job's file)
   * would find its parent gone.
   */
  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await rm(path, { force: true });
    for (
      let dir = dirname(path);
      dir.startsWith(this.root) && dirname(dir).length > this.root.length;
      dir = dirname(dir)
    ) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty (ENOTEMPTY), or already gone: the folders above are not ours to remove
      }
    }
  }

  async open(key: string): Promise<OpenedBlob | null> {
    let handle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    try {
      // Size and stream come from one open file: a put that renames new bytes into place meanwhile
      // does not change what this reader gets.
      const { size } = await handle.stat();
      return { stream: handle.createReadStream(), size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Walks the directories in key order and stops after one page: the keys are never all held at
   * once, but a page deep into a large folder still reads that folder's names (an embedded store
   * holds what one node made; a bucket shared by many lists on the server side).
   */
  async list(prefix: string, options: ListOptions = {}): Promise<BlobPage> {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('The page limit must be a positive integer.');
    const after = options.startAfter ?? '';
    const entries: BlobEntry[] = [];
    for await (const key of walk(this.root, '', prefix, after)) {
      if (entries.length === limit) return { entries, next: entries.at(-1)!.key };
      const modified = await this.#modified(key);
      // Deleted between the directory read and the stat: no longer a key.
      if (modified !== null) entries.push({ key, modified });
    }
    return { entries, next: null };
  }

  async #modified(key: string): Promise<number | null> {
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

/**
 * Keys under `dir` (whose keys start with `base`) that start with `prefix` and sort after `after`, in
 * ascending order. A folder sorts as its name plus "/", since every key inside it continues so;
 * folders that cannot hold a wanted key are not entered.
 */
async function* walk(dir: string, base: string, prefix: string, after: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    // A root that was never written to holds no keys.
    if (isMissing(error)) return;
    throw error;
  }
  const items = entries
    .filter((entry) => !entry.name.startsWith('.') && (entry.isDirectory() || entry.isFile()))
    .map((entry) => ({ key: base + entry.name + (entry.isDirectory() ? '/' : ''), folder: entry.isDirectory() }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { key, folder } of items) {
    if (folder) {
      // Enter only when the folder's keys can start with the prefix and can sort after the cursor.
      const reachesPrefix = key.startsWith(prefix) || prefix.startsWith(key);
      const reachesAfter = key > after || after.startsWith(key);
      if (reachesPrefix && reachesAfter) yield* walk(join(dir, key.slice(base.length, -1)), key, prefix, after);
    } else if (key.startsWith(prefix) && key > after) {
      yield key;
    }
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
