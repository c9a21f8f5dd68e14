// A local stand-in for the Hugging Face hub that answers the way huggingface.co does, so pulls are
// tested without the network:
//   GET /api/models/{repo}/revision/{rev}?blobs=true  {sha, siblings: [{rfilename, size, blobId, lfs?}]}
//   GET /{repo}/resolve/{commit|rev}/{path}           git files: 200 here; LFS files: 302 to the CDN
//   GET {cdn}/blobs/{sha256}                          a second server (another origin), like a pre-signed
//                                                     S3 link: it refuses requests that carry Authorization
// Both honour `Range: bytes=N-` with 206. Unknown repositories get 401 RepoNotFound without a token and
// 404 with one (as the hub hides private repositories); with `token` set, every hub request needs it
// (401 GatedRepo otherwise). Faults for tests: cut a body off (or stall it) after N bytes, answer an
// error status, corrupt a file's bytes while the listing keeps its true hash, or ignore Range.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

export interface SeenRequest {
  server: 'hub' | 'cdn';
  method: string;
  /** Decoded path, without the query. */
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeRepo {
  /** Content by repository path ('/'-separated). */
  files: Map<string, Buffer>;
  /** Revision (branch or tag) → commit sha. Default: main only. */
  revisions: Record<string, string>;
}

export interface FakeHubOptions {
  /** Files of at least this many bytes are LFS files (lfs.sha256 in the listing, served by the CDN). Default 2000. */
  lfsThreshold?: number;
  /** When set, every hub request needs `Authorization: Bearer <token>`. */
  token?: string;
}

export interface FakeHub {
  /** Base URL to use as HF_ENDPOINT (http://127.0.0.1:port). */
  endpoint: string;
  /** host:port of the CDN. */
  cdnHost: string;
  /** Every request both servers received, in order. */
  requests: SeenRequest[];
  repos: Map<string, FakeRepo>;
  /** Serve `files` as repository `id`; revisions default to main with a commit derived from the id. */
  addRepo(id: string, files: Map<string, Buffer>, revisions?: string[]): FakeRepo;
  /**
   * The next `times` responses for `path` end after `afterBytes` bytes of body: the connection is destroyed, or left
   * hanging with `stall`.
   */
  cutOff(path: string, afterBytes: number, options?: { times?: number; stall?: boolean }): void;
  /** The next `times` downloads of `path` answer `status` (from the CDN for LFS files, as an expired link would). */
  failWith(path: string, status: number, times?: number): void;
  /** Serve `path` with one byte changed; the listing keeps the true size and hash. */
  corrupt(path: string): void;
  /** Answer Range requests with 200 and the whole file, as some servers do. */
  ignoreRange(ignore: boolean): void;
  close(): Promise<void>;
}

/** A folder's files as repository content, plus `extra` files (PyTorch weights, a README …). */
export async function repoFiles(
  folder: string,
  extra: Record<string, string | Buffer> = {},
): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    files.set(relative(folder, full).split(sep).join('/'), await readFile(full));
  }
  for (const [path, content] of Object.entries(extra)) files.set(path, Buffer.from(content));
  return files;
}

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const gitBlobSha1 = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const lfsPointer = (bytes: Buffer) =>
  Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(bytes)}\nsize ${bytes.length}\n`);

export async function startFakeHub(options: FakeHubOptions = {}): Promise<FakeHub> {
  const lfsThreshold = options.lfsThreshold ?? 2000;
  const repos = new Map<string, FakeRepo>();
  const requests: SeenRequest[] = [];
  const cuts = new Map<string, { afterBytes: number; times: number; stall: boolean }>();
  const corrupted = new Set<string>();
  const failures = new Map<string, { status: number; times: number }>();
  let rangeIgnored = false;

  const isLfs = (bytes: Buffer) => bytes.length >= lfsThreshold;
  const record = (server: SeenRequest['server'], req: IncomingMessage) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({
      server,
      method: req.method ?? '',
      path,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    return path;
  };

  /** Sends `content` (the file at `path`) honouring Range and the configured faults. */
  const sendFile = (req: IncomingMessage, res: ServerResponse, path: string, original: Buffer) => {
    const failure = failures.get(path);
    if (failure && failure.times > 0) {
      failure.times--;
      res.writeHead(failure.status, { 'content-type': 'text/plain' }).end(`failing ${path} as asked`);
      return;
    }
    let content = original;
    if (corrupted.has(path)) {
      content = Buffer.from(original);
      const middle = content.length >> 1;
      content[middle] = content[middle]! ^ 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    const headers: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      etag: `"${sha256(original)}"`,
      'content-type': 'application/octet-stream',
    };
    if (range && !rangeIgnored) {
      start = Number(range[1]);
      if (start >= content.length) {
        res.writeHead(416, { 'content-range': `bytes */${content.length}` }).end();
        return;
      }
      headers['content-range'] = `bytes ${start}-${content.length - 1}/${content.length}`;
    }
    const body = content.subarray(start);
    res.writeHead(range && !rangeIgnored ? 206 : 200, { ...headers, 'content-length': body.length });
    const cut = cuts.get(path);
    if (!cut || cut.times <= 0) {
      res.end(body);
      return;
    }
    cut.times--;
    res.write(body.subarray(0, cut.afterBytes), () => {
      // Give the client a moment to take the bytes in before the connection goes.
      if (!cut.stall) setTimeout(() => res.socket?.destroy(), 150);
    });
  };

  const cdn = createServer((req, res) => {
    const path = record('cdn', req);
    if (req.headers.authorization) {
      // As S3 answers a pre-signed URL that also carries a header credential.
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Only one auth mechanism allowed');
      return;
    }
    const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(path)?.[1];
    for (const repo of repos.values()) {
      for (const [filePath, content] of repo.files) {
        if (blob && isLfs(content) && sha256(content) === blob) return sendFile(req, res, filePath, content);
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('NoSuchKey');
  });

  const hub = createServer((req, res) => {
    const path = record('hub', req);
    const url = new URL(req.url ?? '/', 'http://x');
    const refuse = (status: number, code: string, message: string) =>
      res
        .writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' })
        .end(JSON.stringify({ error: message }));
    const authorized =
      req.headers.authorization !== undefined &&
      (!options.token || req.headers.authorization === `Bearer ${options.token}`);
    if (options.token && !authorized) {
      return refuse(401, 'GatedRepo', 'Access to this model is restricted. You must be authenticated to access it.');
    }
    const notFound = () => refuse(authorized ? 404 : 401, 'RepoNotFound', 'Repository Not Found');

    const listing = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(path);
    if (listing) {
      const repo = repos.get(listing[1]!);
      if (!repo) return notFound();
      const commit =
        repo.revisions[listing[2]!] ?? (Object.values(repo.revisions).includes(listing[2]!) ? listing[2] : undefined);
      if (!commit) return refuse(404, 'RevisionNotFound', `Invalid rev id: ${listing[2]}`);
      if (url.searchParams.get('blobs') !== 'true')
        return refuse(400, 'BadRequest', 'this fake hub only answers ?blobs=true');
      const siblings = [...repo.files]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([rfilename, content]) =>
          isLfs(content)
            ? {
                rfilename,
                size: content.length,
                blobId: gitBlobSha1(lfsPointer(content)),
                lfs: { sha256: sha256(content), size: content.length, pointerSize: lfsPointer(content).length },
              }
            : { rfilename, size: content.length, blobId: gitBlobSha1(content) },
        );
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ id: listing[1], sha: commit, siblings }));
      return;
    }

    const resolve = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolve) {
      const [, id, rev, filePath] = resolve as unknown as [string, string, string, string];
      const repo = repos.get(id);
      if (!repo) return notFound();
      if (!repo.revisions[rev] && !Object.values(repo.revisions).includes(rev))
        return refuse(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const content = repo.files.get(filePath);
      if (!content) return refuse(404, 'EntryNotFound', `${filePath} does not exist`);
      if (!isLfs(content)) return sendFile(req, res, filePath, content);
      res
        .writeHead(302, {
          location: `http://${cdnHost}/blobs/${sha256(content)}?X-Amz-Signature=fake`,
          'x-linked-size': content.length,
        })
        .end();
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
  });

  const listen = (server: Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)),
    );
  const hubHost = await listen(hub);
  const cdnHost = await listen(cdn);

  return {
    endpoint: `http://${hubHost}`,
    cdnHost,
    requests,
    repos,
    addRepo(id, files, revisions = ['main']) {
      const repo: FakeRepo = {
        files,
        revisions: Object.fromEntries(revisions.map((r) => [r, createHash('sha1').update(`${id}@${r}`).digest('hex')])),
      };
      repos.set(id, repo);
      return repo;
    },
    cutOff(path, afterBytes, cutOptions = {}) {
      cuts.set(path, { afterBytes, times: cutOptions.times ?? 1, stall: cutOptions.stall ?? false });
    },
    failWith(path, status, times = 1) {
      failures.set(path, { status, times });
    },
    corrupt(path) {
      corrupted.add(path);
    },
    ignoreRange(ignore) {
      rangeIgnored = ignore;
    },
    async close() {
      for (const server of [hub, cdn]) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}
