// One file of a pull: resumable (bytes go to `<file>.incomplete`, a later attempt asks for the rest
// with Range), retried on network trouble, checked against the hub's size and hash, and only then
// renamed into place. A check that fails deletes the file: a corrupt byte cannot be resumed past.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rename, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { diskError, PullError } from './errors.ts';
import { type Hub, type HubFile, networkError } from './hub.ts';

export interface DownloadSettings {
  hub: Hub;
  repo: string;
  commit: string;
  /** The caller's abort (Ctrl-C): stops at once, keeping the partial file. */
  signal: AbortSignal;
  /** Further attempts after a network failure, 5xx or stall; each resumes where the last stopped. */
  retries: number;
  /** Wait before the first retry; doubles each time. */
  retryDelayMs: number;
  /** A response that sends nothing for this long counts as a network failure. */
  idleTimeoutMs: number;
}

export const INCOMPLETE_SUFFIX = '.incomplete';

/** The hashes a hub file is checked with: sha256 of the content (LFS) or its git blob sha1. */
class FileHash {
  private readonly sha256: Hash = createHash('sha256');
  private readonly gitSha1?: Hash;

  constructor(private readonly file: HubFile) {
    if (!file.sha256) this.gitSha1 = createHash('sha1').update(`blob ${file.size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1?.update(chunk);
  }

  /** The content's sha256, or the reason it does not match the listing. */
  finish(): { sha256: string; mismatch?: string } {
    const sha256 = this.sha256.digest('hex');
    if (this.file.sha256) {
      return sha256 === this.file.sha256
        ? { sha256 }
        : { sha256, mismatch: `sha256 ${sha256} differs from the hub's ${this.file.sha256}` };
    }
    const sha1 = this.gitSha1!.digest('hex');
    return sha1 === this.file.blobId
      ? { sha256 }
      : { sha256, mismatch: `git blob sha1 ${sha1} differs from the hub's ${this.file.blobId}` };
  }
}

async function hashInto(hash: FileHash, path: string, signal?: AbortSignal): Promise<void> {
  for await (const chunk of createReadStream(path, { signal, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

/** The sha256 of a complete file at `path` when its size and hash match the listing, else undefined. */
export async function verifyExisting(path: string, file: HubFile, signal?: AbortSignal): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile() || info.size !== file.size) return undefined;
  const hash = new FileHash(file);
  await hashInto(hash, path, signal);
  const result = hash.finish();
  return result.mismatch ? undefined : result.sha256;
}

class Transient extends Error {}

/**
 * Downloads `file` to `dest`, resuming `dest.incomplete` when present. `onProgress` gets the bytes
 * of this file on disk so far. Answers the content's sha256 and where it resumed from.
 */
export async function downloadFile(
  file: HubFile,
  dest: string,
  settings: DownloadSettings,
  onProgress: (bytes: number) => void,
): Promise<{ sha256: string; resumedFrom: number }> {
  if (!file.sha256 && !file.blobId)
    throw new PullError('hub', `the hub listed ${file.path} without a hash, so it cannot be checked`);
  const partial = dest + INCOMPLETE_SUFFIX;
  let fh: FileHandle;
  try {
    fh = await open(partial, 'a');
  } catch (error) {
    throw diskError(partial, error);
  }
  try {
    const state = { have: (await fh.stat()).size, hash: new FileHash(file) };
    if (state.have > file.size) {
      await fh.truncate(0);
      state.have = 0;
    }
    const resumedFrom = state.have;
    if (state.have > 0)
      await hashInto(state.hash, partial, settings.signal).catch((error) => rethrowAbort(settings.signal, error));
    onProgress(state.have);

    for (let failures = 0; state.have < file.size;) {
      const before = state.have;
      try {
        await attempt(file, fh, state, settings, onProgress);
      } catch (error) {
        if (settings.signal.aborted) throw interrupted(file.path);
        if (!(error instanceof Transient)) throw error;
        if (state.have > before) failures = 0; // progress was made: a flaky link, not a dead one
        if (failures >= settings.retries) {
          throw new PullError(
            'network',
            `${error.message}; ${state.have} of ${file.size} bytes of ${file.path} are kept: run the pull again to resume`,
          );
        }
        failures++;
        await sleep(settings.retryDelayMs * 2 ** (failures - 1), undefined, { signal: settings.signal }).catch(() => {
          throw interrupted(file.path);
        });
      }
    }
    await fh.close().catch((error) => {
      throw diskError(partial, error);
    });

    const sha256 = await verifyDownload(state.hash, file, partial);
    await rename(partial, dest).catch((error) => {
      throw diskError(dest, error);
    });
    return { sha256, resumedFrom };
  } finally {
    await fh.close().catch(() => {});
    // Nothing to resume in an empty partial file (a download stopped before its first byte).
    if ((await stat(partial).catch(() => undefined))?.size === 0) await unlink(partial).catch(() => {});
  }
}

/** The content's sha256 once all of it is on disk; one that does not match the listing deletes the file. */
async function verifyDownload(hash: FileHash, file: HubFile, partial: string): Promise<string> {
  const { sha256, mismatch } = hash.finish();
  if (mismatch) {
    await unlink(partial).catch(() => {});
    throw new PullError(
      'integrity',
      `${file.path} is corrupt: ${mismatch}. The file was deleted; run the pull again to download it again`,
    );
  }
  return sha256;
}

/** One request: from `state.have` to the end of the body. Throws Transient for what a retry may fix. */
async function attempt(
  file: HubFile,
  fh: FileHandle,
  state: { have: number; hash: FileHash },
  settings: DownloadSettings,
  onProgress: (bytes: number) => void,
): Promise<void> {
  const idle = idleTimeout(settings.idleTimeoutMs);
  const signal = AbortSignal.any([settings.signal, idle.signal]);
  try {
    const response = await requestFile(file, state.have, settings, signal, idle.signal);
    const host = new URL(response.url || settings.hub.options.endpoint).host;
    if (!(await resumeOrRestart(response, file, fh, state))) return;
    if (!response.body) throw new Transient(`${host} sent an empty body for ${file.path}`);
    try {
      await streamToFile(response.body, file, fh, state, { signal, host, alive: idle.alive, onProgress });
    } catch (error) {
      throw streamFailure(error, settings, idle.signal, host, file.path);
    }
    if (state.have < file.size)
      throw new Transient(`${host} ended ${file.path} after ${state.have} of ${file.size} bytes`);
  } finally {
    idle.stop();
  }
}

/** A signal that fires once `ms` pass without a call to `alive`: a response that stalls counts as a network failure. */
function idleTimeout(ms: number): { signal: AbortSignal; alive: () => void; stop: () => void } {
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Transient(`no data for ${ms / 1000} s`)), ms);
  };
  alive();
  return { signal: idle.signal, alive, stop: () => clearTimeout(timer) };
}

/** The hub's answer to a request for the bytes from `from` on; a failure a retry may fix becomes Transient. */
async function requestFile(
  file: HubFile,
  from: number,
  settings: DownloadSettings,
  signal: AbortSignal,
  idle: AbortSignal,
): Promise<Response> {
  try {
    return await settings.hub.openFile(settings.repo, settings.commit, file.path, { from, signal });
  } catch (error) {
    if (idle.aborted)
      throw new Transient(`${settings.hub.host} sent no answer for ${file.path} in ${settings.idleTimeoutMs / 1000} s`);
    if (
      error instanceof PullError &&
      (error.code === 'network' || (error.code === 'hub' && isTransientStatus(error.status)))
    ) {
      throw new Transient(error.message);
    }
    throw error;
  }
}

/**
 * What to do with the answer to a request for the bytes from `have` on: `append` its body to the
 * partial file; `start-over` with its body, the whole file (a 200 to a resume); or `ask-again` from
 * byte 0 when the server sent some other range.
 */
export function rangeDecision(
  status: number,
  rangeStart: number | undefined,
  have: number,
): 'append' | 'start-over' | 'ask-again' {
  if (status === 206) return rangeStart === have ? 'append' : 'ask-again';
  return have > 0 ? 'start-over' : 'append';
}

/** Acts on rangeDecision: a restart empties the partial file and its hash. False: this body is of no use. */
async function resumeOrRestart(
  response: Response,
  file: HubFile,
  fh: FileHandle,
  state: { have: number; hash: FileHash },
): Promise<boolean> {
  const decision = rangeDecision(response.status, contentRangeStart(response), state.have);
  if (decision === 'append') return true;
  await fh.truncate(0).catch((error) => {
    throw diskError(file.path, error);
  });
  state.have = 0;
  state.hash = new FileHash(file);
  if (decision === 'start-over') return true;
  response.body?.cancel().catch(() => {});
  return false;
}

/**
 * Appends the body to the partial file, hashing it and reporting progress; more bytes than the hub lists is corruption.
 */
async function streamToFile(
  body: ReadableStream<Uint8Array>,
  file: HubFile,
  fh: FileHandle,
  state: { have: number; hash: FileHash },
  io: { signal: AbortSignal; host: string; alive: () => void; onProgress: (bytes: number) => void },
): Promise<void> {
  for await (const chunk of chunksOf(body, io.signal)) {
    io.alive();
    if (state.have + chunk.length > file.size) {
      throw new PullError(
        'integrity',
        `${file.path} is corrupt: ${io.host} sent more than the ${file.size} bytes the hub lists. Run the pull again`,
      );
    }
    try {
      await fh.write(chunk);
    } catch (error) {
      throw diskError(file.path, error);
    }
    state.hash.update(chunk);
    state.have += chunk.length;
    io.onProgress(state.have);
    if (state.have === file.size) break; // all there: no need to wait for the end of the stream
  }
}

/** What a failure while streaming becomes: the caller's abort and PullErrors as they are, the rest Transient. */
function streamFailure(
  error: unknown,
  settings: DownloadSettings,
  idle: AbortSignal,
  host: string,
  path: string,
): unknown {
  if (error instanceof PullError) return error;
  if (settings.signal.aborted) return error;
  if (idle.aborted) return new Transient(`${host} sent no data for ${path} in ${settings.idleTimeoutMs / 1000} s`);
  return new Transient(networkError(error, host, `downloading ${path}`).message);
}

/**
 * The chunks of a response body until it ends or `signal` aborts. Each read races the signal, and
 * the reader is cancelled without waiting: an abort that meets the last bytes of a body can leave
 * undici's stream neither closed nor errored, and a `for await` over it would wait forever.
 */
async function* chunksOf(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason ?? new Error('aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) return;
      yield value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    reader.cancel().catch(() => {});
  }
}

/** Server trouble and rate limits pass; other refusals do not. */
function isTransientStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

function contentRangeStart(response: Response): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

function interrupted(path: string): PullError {
  return new PullError('interrupted', `interrupted while downloading ${path}`);
}

function rethrowAbort(signal: AbortSignal, error: unknown): never {
  if (signal.aborted) throw new PullError('interrupted', 'interrupted');
  throw error;
}
