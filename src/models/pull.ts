// `easel pull`: one ONNX diffusers folder from the Hugging Face hub into <models.dir>/<name>.
// The order of a pull is what makes it safe to interrupt and to run again:
//   1. list the revision's files (one commit sha for all of them) and keep the ONNX layout's;
//   2. claim the folder: a pull note names the repository and commit, the old completion marker goes;
//   3. fetch each file to <file>.incomplete (resuming what is there), check its size and hash, rename it;
//   4. inspect the folder as the engine will; write the completion marker last, by rename.
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { inspectModelFolder, type ModelFolder, ModelFolderError } from '../engines/diffusion/model/index.ts';
import { findAlias, type ModelAlias } from './aliases.ts';
import { downloadFile, type DownloadSettings, INCOMPLETE_SUFFIX, verifyExisting } from './download.ts';
import { diskError, PullError } from './errors.ts';
import { Hub, type HubFile, type HubOptions } from './hub.ts';
import { selectLayoutFiles } from './layout.ts';
import {
  MARKER_FILE,
  type ModelMarker,
  PULL_NOTE_FILE,
  readMarker,
  readPullNote,
  removeFile,
  writeJsonAtomically,
} from './marker.ts';

export interface PullOptions {
  /** A repository id (owner/name) or an alias from MODEL_ALIASES. */
  source: string;
  /** Default: the alias's revision, else main. */
  revision?: string;
  /** Folder name under modelsDir. Default: the alias, else the repository's name. */
  name?: string;
  /** Delete the folder first and download everything again; also takes over a folder that holds something else. */
  force?: boolean;
  modelsDir: string;
  hub: HubOptions;
  onEvent?: (event: PullEvent) => void;
  /** Abort (Ctrl-C): the pull stops with PullError('interrupted') and keeps its partial files. */
  signal?: AbortSignal;
  /** Files downloaded at once. Default 4. */
  concurrency?: number;
  /** Per file, attempts after the first on network failures. Default 5. */
  retries?: number;
  /** Default 1000 ms, doubling. */
  retryDelayMs?: number;
  /** Default 60 s. */
  idleTimeoutMs?: number;
}

export type PullEvent =
  | {
      type: 'listed';
      repo: string;
      revision: string;
      commit: string;
      name: string;
      folder: string;
      files: HubFile[];
      skipped: string[];
      totalSize: number;
    }
  /** A file already in the folder is being hashed; `file-done` with `alreadyThere` follows when it matches. */
  | { type: 'file-checking'; path: string; size: number }
  | { type: 'file-started'; path: string; size: number; resumedFrom: number }
  /**
   * `bytes` of this file are on disk; `totalBytes` of all files; `receivedBytes` came over the network in this pull.
   */
  | {
      type: 'progress';
      path: string;
      bytes: number;
      size: number;
      totalBytes: number;
      totalSize: number;
      receivedBytes: number;
    }
  | { type: 'file-done'; path: string; size: number; alreadyThere: boolean }
  | { type: 'inspecting'; folder: string };

export interface PullResult {
  name: string;
  folder: string;
  alias: ModelAlias | undefined;
  marker: ModelMarker;
  model: ModelFolder;
  /** Files that were complete already and were only checked. */
  alreadyThere: number;
  /** Files that continued a partial download. */
  resumed: number;
  /** Bytes that came over the network. */
  receivedBytes: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export async function pullModel(options: PullOptions): Promise<PullResult> {
  const alias = findAlias(options.source);
  const repo = alias?.repo ?? options.source;
  const revision = options.revision ?? alias?.revision ?? 'main';
  const name = options.name ?? alias?.name ?? repo.split('/').pop()!;
  if (!NAME.test(name) || name.endsWith('.incomplete')) {
    throw new PullError(
      'bad-request',
      `${JSON.stringify(name)} cannot name a model folder: use letters, digits, ".", "_" and "-" (--name)`,
    );
  }
  const signal = options.signal ?? new AbortController().signal;
  const emit = options.onEvent ?? (() => {});
  const hub = new Hub(options.hub);

  // 1. The listing, and the layout's files in it.
  const listing = await hub.listFiles(repo, revision, signal).catch((error) => rethrowInterrupted(signal, error));
  const { keep, skipped } = selectLayoutFiles(repo, revision, listing.files);
  const folder = join(options.modelsDir, name);
  const totalSize = keep.reduce((sum, f) => sum + f.size, 0);

  // 2. The folder.
  await claimFolder(folder, { repo, revision, commit: listing.commit, force: options.force ?? false, keep });
  emit({
    type: 'listed',
    repo,
    revision,
    commit: listing.commit,
    name,
    folder,
    files: keep,
    skipped: skipped.map((f) => f.path),
    totalSize,
  });

  // 3. The files.
  const tally: Tally = {
    bytes: new Map(),
    hashes: new Map(),
    receivedBytes: 0,
    alreadyThere: 0,
    resumed: 0,
    totalSize,
  };
  const settings = {
    hub,
    repo,
    commit: listing.commit,
    retries: options.retries ?? 5,
    retryDelayMs: options.retryDelayMs ?? 1000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
  };
  await runPool(keep, options.concurrency ?? 4, signal, (file, poolSignal) =>
    pullFile(file, folder, { ...settings, signal: poolSignal }, tally, emit),
  );

  // 4. The folder as the engine sees it, then the marker.
  emit({ type: 'inspecting', folder });
  let model: ModelFolder;
  try {
    model = await inspectModelFolder(folder);
  } catch (error) {
    if (!(error instanceof ModelFolderError)) throw error;
    throw new PullError(
      'invalid-model',
      `${repo}@${revision} downloaded completely, but easel cannot use it: ${error.problems.join('; ')}`,
      error.problems,
    );
  }
  const marker: ModelMarker = {
    repo,
    revision,
    commit: listing.commit,
    alias: alias?.name ?? null,
    endpoint: options.hub.endpoint,
    pulled_at: new Date().toISOString(),
    files: keep.map((f) => ({ path: f.path, size: f.size, sha256: tally.hashes.get(f.path)! })),
  };
  await writeJsonAtomically(folder, MARKER_FILE, marker);
  await removeFile(folder, PULL_NOTE_FILE);
  return {
    name,
    folder,
    alias,
    marker,
    model,
    alreadyThere: tally.alreadyThere,
    resumed: tally.resumed,
    receivedBytes: tally.receivedBytes,
  };
}

/** What the files of one pull add up to, as they arrive. */
interface Tally {
  /** Bytes on disk per file. */
  bytes: Map<string, number>;
  /** sha256 per finished file. */
  hashes: Map<string, string>;
  receivedBytes: number;
  alreadyThere: number;
  resumed: number;
  totalSize: number;
}

/** One file: kept when it is already there and intact, else downloaded (resuming a partial file). */
async function pullFile(
  file: HubFile,
  folder: string,
  settings: DownloadSettings,
  tally: Tally,
  emit: (event: PullEvent) => void,
): Promise<void> {
  const dest = join(folder, ...file.path.split('/'));
  await mkdir(join(dest, '..'), { recursive: true }).catch((error) => {
    throw diskError(dest, error);
  });
  emit({ type: 'file-checking', path: file.path, size: file.size });
  const existing = await verifyExisting(dest, file, settings.signal).catch((error) =>
    rethrowInterrupted(settings.signal, error),
  );
  if (existing) {
    tally.hashes.set(file.path, existing);
    tally.bytes.set(file.path, file.size);
    tally.alreadyThere++;
    emit({ type: 'file-done', path: file.path, size: file.size, alreadyThere: true });
    return;
  }
  const partialSize = (await stat(dest + INCOMPLETE_SUFFIX).catch(() => undefined))?.size ?? 0;
  const resumedFrom = partialSize <= file.size ? partialSize : 0;
  if (resumedFrom > 0) tally.resumed++;
  emit({ type: 'file-started', path: file.path, size: file.size, resumedFrom });
  let last = resumedFrom;
  const { sha256 } = await downloadFile(file, dest, settings, (bytes) => {
    if (bytes > last) tally.receivedBytes += bytes - last;
    last = bytes;
    tally.bytes.set(file.path, bytes);
    const totalBytes = [...tally.bytes.values()].reduce((a, b) => a + b, 0);
    emit({
      type: 'progress',
      path: file.path,
      bytes,
      size: file.size,
      totalBytes,
      totalSize: tally.totalSize,
      receivedBytes: tally.receivedBytes,
    });
  });
  tally.hashes.set(file.path, sha256);
  emit({ type: 'file-done', path: file.path, size: file.size, alreadyThere: false });
}

/**
 * Makes `folder` this pull's: refuses one that holds another repository or files easel did not
 * pull (unless forced), drops partial files of another commit and files the new commit lacks, and
 * replaces the completion marker with a pull note until the pull ends.
 */
async function claimFolder(
  folder: string,
  pull: { repo: string; revision: string; commit: string; force: boolean; keep: HubFile[] },
): Promise<void> {
  if (pull.force)
    await rm(folder, { recursive: true, force: true }).catch((error) => Promise.reject(diskError(folder, error)));
  const marker = await readMarker(folder);
  const note = await readPullNote(folder);
  const owner = note?.repo ?? marker?.repo;
  if (owner !== undefined && owner !== pull.repo) {
    throw new PullError(
      'folder-taken',
      `${folder} holds ${owner}: choose another folder with --name, or replace it with --force`,
    );
  }
  if (owner === undefined) {
    const entries = await readdir(folder).catch(() => []);
    if (entries.length > 0) {
      throw new PullError(
        'folder-taken',
        `${folder} already exists and was not pulled by easel: choose another folder with --name, or replace it with --force`,
      );
    }
  }
  await mkdir(folder, { recursive: true }).catch((error) => Promise.reject(diskError(folder, error)));

  const wanted = new Set(pull.keep.map((f) => f.path));
  // Partial files of another commit would be resumed with the wrong bytes.
  if (note && note.commit !== pull.commit) {
    for (const file of pull.keep) await rm(join(folder, file.path + INCOMPLETE_SUFFIX), { force: true });
  }
  for (const old of marker?.files ?? []) {
    if (!wanted.has(old.path)) await rm(join(folder, old.path), { force: true });
  }
  await writeJsonAtomically(folder, PULL_NOTE_FILE, {
    repo: pull.repo,
    revision: pull.revision,
    commit: pull.commit,
    started_at: new Date().toISOString(),
  });
  await removeFile(folder, MARKER_FILE);
}

/**
 * Runs `work` over `items`, `concurrency` at a time. The first failure aborts the others (their
 * partial files stay) and is the one thrown; an abort of `signal` throws PullError('interrupted').
 */
async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const poolSignal = AbortSignal.any([signal, stop.signal]);
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && !poolSignal.aborted) {
      const item = items[next++]!;
      try {
        await work(item, poolSignal);
      } catch (error) {
        if (failure === undefined && !(stop.signal.aborted && !signal.aborted)) failure = error;
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (signal.aborted)
    throw new PullError('interrupted', 'interrupted: the partial files are kept; run the same pull again to resume');
  if (failure !== undefined) throw failure;
}

function rethrowInterrupted(signal: AbortSignal, error: unknown): never {
  if (signal.aborted)
    throw new PullError('interrupted', 'interrupted: the partial files are kept; run the same pull again to resume');
  throw error;
}
