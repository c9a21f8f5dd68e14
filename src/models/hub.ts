// The two Hugging Face hub requests a pull needs, as huggingface_hub makes them:
//   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true   the files of one commit, with sizes and hashes
//   GET {endpoint}/{repo}/resolve/{commit}/{path}                    a file (usually a redirect to a CDN)
// Redirects are followed here rather than by fetch so that errors name the host that failed and the
// token only ever goes to the hub's own origin (CDN links are pre-signed and refuse a second credential).
import { ConfigError } from '../config/index.ts';
import { PullError } from './errors.ts';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Base URL of the hub (HF_ENDPOINT), without a trailing slash. */
  endpoint: string;
  /** HF_TOKEN, sent as `Authorization: Bearer` to the endpoint's origin only. */
  token?: string;
}

export interface HubFile {
  /** Path in the repository, '/'-separated. */
  path: string;
  size: number;
  /** Git blob sha1 of the file; checks files stored in git itself. */
  blobId?: string;
  /** sha256 of the content of files stored in LFS. */
  sha256?: string;
}

export interface HubListing {
  repo: string;
  revision: string;
  /** The commit the revision points at; every file is fetched from it. */
  commit: string;
  files: HubFile[];
}

/** HF_ENDPOINT and HF_TOKEN, as huggingface_hub reads them. */
export function hubOptionsFromEnv(env: NodeJS.ProcessEnv): HubOptions {
  const raw = env.HF_ENDPOINT?.trim() || DEFAULT_HUB_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError('HF_ENDPOINT', `must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  const token = env.HF_TOKEN?.trim() || undefined;
  return { endpoint: url.href.replace(/\/+$/, ''), token };
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;
const MAX_REDIRECTS = 5;
const LISTING_TIMEOUT_MS = 60_000;

export class Hub {
  readonly host: string;
  private readonly origin: string;

  constructor(readonly options: HubOptions) {
    const url = new URL(options.endpoint);
    this.host = url.host;
    this.origin = url.origin;
  }

  /** The files of `revision` with their sizes and hashes, and the commit it resolves to. */
  async listFiles(repo: string, revision: string, signal?: AbortSignal): Promise<HubListing> {
    if (!REPO_ID.test(repo))
      throw new PullError(
        'bad-request',
        `${JSON.stringify(repo)} is not a repository id (owner/name) or a known alias`,
      );
    const url = `${this.options.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const timeout = AbortSignal.timeout(LISTING_TIMEOUT_MS);
    const what = `the file list of ${repo}@${revision}`;
    const response = await this.request(url, {
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      what,
    }).catch((error: unknown) => {
      if (timeout.aborted && !signal?.aborted)
        throw new PullError('network', `${this.host} did not answer for ${what} in ${LISTING_TIMEOUT_MS / 1000} s`);
      throw error;
    });
    if (response.status !== 200) throw await this.refusal(response, { repo, revision });
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw new PullError(
        'hub',
        `${this.host} answered the file list of ${repo}@${revision} with something other than JSON`,
        [],
        { cause: error },
      );
    }
    return parseListing(this.host, repo, revision, body);
  }

  /** The URL huggingface_hub downloads `path` of `commit` from. */
  fileUrl(repo: string, commit: string, path: string): string {
    return `${this.options.endpoint}/${repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * Starts downloading a file, from byte `from` on when it is above 0. Answers the 200 or 206
   * response (a server that ignores Range answers 200: the caller starts over); throws PullError
   * for anything else.
   */
  async openFile(
    repo: string,
    commit: string,
    path: string,
    options: { from: number; signal?: AbortSignal },
  ): Promise<Response> {
    const headers: Record<string, string> =
      options.from > 0 ? { range: `bytes=${options.from}-` } : { 'accept-encoding': 'identity' };
    const response = await this.request(this.fileUrl(repo, commit, path), {
      headers,
      signal: options.signal,
      what: path,
    });
    if (response.status === 200 || response.status === 206) return response;
    throw await this.refusal(response, { repo, revision: commit, path });
  }

  /** fetch with the redirects followed by hand; network failures become PullError('network') naming the host. */
  private async request(
    start: string,
    options: { headers?: Record<string, string>; signal?: AbortSignal; what: string },
  ): Promise<Response> {
    let url = new URL(start);
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'easel', ...options.headers };
      if (this.options.token && url.origin === this.origin) headers.authorization = `Bearer ${this.options.token}`;
      let response: Response;
      try {
        response = await fetch(url, { headers, redirect: 'manual', signal: options.signal });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason ?? error;
        throw networkError(error, url.host, `fetching ${options.what}`);
      }
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || !location) return response;
      response.body?.cancel().catch(() => {}); // not awaited: see chunksOf in download.ts
      if (hop >= MAX_REDIRECTS)
        throw new PullError('hub', `too many redirects fetching ${options.what} (last: ${url.host})`);
      url = new URL(location, url);
    }
  }

  /** A non-success answer as a PullError that says what to do. */
  private async refusal(
    response: Response,
    target: { repo: string; revision: string; path?: string },
  ): Promise<PullError> {
    const errorCode = response.headers.get('x-error-code') ?? '';
    const serverMessage = response.headers.get('x-error-message') ?? (await shortText(response)).slice(0, 200);
    const host = new URL(response.url || this.options.endpoint).host || this.host;
    const { repo, revision, path } = target;
    if (new URL(response.url || this.options.endpoint).origin !== this.origin) {
      // A CDN link that failed (expired, throttled): no status, so a retry fetches a fresh link from the hub.
      return new PullError(
        'hub',
        `${host} answered ${response.status} for ${path ?? repo}${serverMessage ? `: ${serverMessage}` : ''}`,
      );
    }
    const what = path ? `${path} of ${repo}@${revision.slice(0, 12)}` : `${repo}@${revision}`;
    const tokenHint = this.options.token
      ? 'the token in HF_TOKEN was not accepted (check that it is valid and has read access)'
      : 'set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens)';
    const pageUrl = `${this.options.endpoint}/${repo}`;
    if (errorCode === 'RevisionNotFound')
      return new PullError('not-found', `revision ${revision} does not exist in ${repo} on ${host}`);
    if (response.status === 404 || errorCode === 'RepoNotFound' || errorCode === 'EntryNotFound') {
      const privateHint = this.options.token
        ? ''
        : ' (if it is private or gated, set HF_TOKEN to a token that can read it)';
      return errorCode === 'EntryNotFound' || (path && response.status === 404 && errorCode !== 'RepoNotFound')
        ? new PullError('not-found', `${what} was not found on ${host}`)
        : new PullError('not-found', `repository ${repo} was not found on ${host}${privateHint}`);
    }
    if (response.status === 401) {
      const gated = errorCode === 'GatedRepo' ? ` ${repo} is gated: accept its conditions at ${pageUrl}, then` : '';
      return new PullError('unauthorized', `${host} requires authentication for ${what}:${gated} ${tokenHint}`);
    }
    if (response.status === 403) {
      const reason =
        errorCode === 'GatedRepo'
          ? `${repo} is gated: accept its conditions at ${pageUrl} with the account of the token in HF_TOKEN`
          : tokenHint;
      return new PullError(
        'forbidden',
        `${host} refused ${what} (403): ${reason}${serverMessage ? ` (${serverMessage})` : ''}`,
      );
    }
    return new PullError(
      'hub',
      `${host} answered ${response.status} for ${what}${serverMessage ? `: ${serverMessage}` : ''}`,
      [],
      {
        status: response.status,
      },
    );
  }
}

/** The start of an error body, or '' when it does not come within a few seconds. */
async function shortText(response: Response): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(''), 5000)));
  try {
    return await Promise.race([response.text().catch(() => ''), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** fetch's "fetch failed" / "terminated" as a message naming the host and the system error. */
export function networkError(error: unknown, host: string, doing: string): PullError {
  if (error instanceof PullError) return error;
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? (error as NodeJS.ErrnoException)?.code;
  const explained: Record<string, string> = {
    ENOTFOUND: 'the host name does not resolve',
    EAI_AGAIN: 'the host name does not resolve (DNS)',
    ECONNREFUSED: 'the connection was refused',
    ECONNRESET: 'the connection was reset',
    ETIMEDOUT: 'the connection timed out',
    UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
    UND_ERR_SOCKET: 'the connection was closed',
  };
  const detail =
    code && explained[code]
      ? `${explained[code]} (${code})`
      : (cause?.message ?? (error as Error)?.message ?? String(error));
  return new PullError('network', `cannot reach ${host} while ${doing}: ${detail}`, [], { cause: error });
}

function parseListing(host: string, repo: string, revision: string, body: unknown): HubListing {
  const bad = (why: string) =>
    new PullError(
      'hub',
      `${host} sent a file list of ${repo}@${revision} that easel cannot read: ${why} (is HF_ENDPOINT a Hugging Face hub?)`,
    );
  if (typeof body !== 'object' || body === null) throw bad('not an object');
  const { sha, siblings } = body as { sha?: unknown; siblings?: unknown };
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) throw bad('no commit sha');
  if (!Array.isArray(siblings)) throw bad('no siblings');
  const files = siblings.map(
    (s: { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; size?: unknown } }) => {
      if (typeof s?.rfilename !== 'string') throw bad('a file without rfilename');
      const lfs = s.lfs && typeof s.lfs.sha256 === 'string' ? { sha256: s.lfs.sha256, size: s.lfs.size } : undefined;
      const size = typeof lfs?.size === 'number' ? lfs.size : s.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`no size for ${s.rfilename}`);
      const file: HubFile = { path: s.rfilename, size };
      if (lfs) file.sha256 = lfs.sha256.toLowerCase();
      else if (typeof s.blobId === 'string') file.blobId = s.blobId.toLowerCase();
      return file;
    },
  );
  return { repo, revision, commit: sha, files };
}
