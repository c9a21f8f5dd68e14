// Two small files easel keeps in a pulled folder:
//   .easel-model.json  written last, by rename, once every file is in place and checked: the folder is complete.
//   .easel-pull.json   written first and removed at the end: a pull of this repository and commit is under way
//                      (or was interrupted), so a later pull knows whose partial files these are.
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { diskError } from './errors.ts';

export const MARKER_FILE = '.easel-model.json';
export const PULL_NOTE_FILE = '.easel-pull.json';

export interface ModelMarker {
  repo: string;
  /** The revision asked for (branch, tag or commit). */
  revision: string;
  /** The commit it resolved to; every file came from it. */
  commit: string;
  /** The alias pulled, when one was. */
  alias: string | null;
  /** The hub it came from (HF_ENDPOINT). */
  endpoint: string;
  /** ISO 8601. */
  pulled_at: string;
  files: Array<{ path: string; size: number; sha256: string }>;
}

export interface PullNote {
  repo: string;
  revision: string;
  commit: string;
  started_at: string;
}

export async function readMarker(folder: string): Promise<ModelMarker | undefined> {
  const value = await readJsonFile(join(folder, MARKER_FILE));
  return value && typeof value.repo === 'string' && typeof value.commit === 'string' && Array.isArray(value.files)
    ? (value as unknown as ModelMarker)
    : undefined;
}

export async function readPullNote(folder: string): Promise<PullNote | undefined> {
  const value = await readJsonFile(join(folder, PULL_NOTE_FILE));
  return value && typeof value.repo === 'string' && typeof value.commit === 'string'
    ? (value as unknown as PullNote)
    : undefined;
}

/** Writes `value` as `name` in `folder` through a temporary name, so a crash leaves the old file or the new one. */
export async function writeJsonAtomically(folder: string, name: string, value: unknown): Promise<void> {
  const path = join(folder, name);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw diskError(path, error);
  }
}

export async function removeFile(folder: string, name: string): Promise<void> {
  const path = join(folder, name);
  await rm(path, { force: true }).catch((error) => {
    throw diskError(path, error);
  });
}

async function readJsonFile(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
