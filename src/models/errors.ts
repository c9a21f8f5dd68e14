// Why a pull failed, as a stable code (what tests and the CLI branch on) and a message written
// for the person at the terminal: what happened, and what to do about it.

export type PullErrorCode =
  /** The repository, revision or file does not exist on the hub. */
  | 'not-found'
  /** The hub wants a token (none given) or refused the one in HF_TOKEN. */
  | 'unauthorized'
  /** A gated or restricted repository whose conditions the token's account has not accepted. */
  | 'forbidden'
  /** The hub answered with an unexpected status or body. */
  | 'hub'
  /** The host could not be reached, or a download stopped and retries ran out. */
  | 'network'
  /** A downloaded file's size or hash differs from the listing; the file was deleted. */
  | 'integrity'
  /** The repository holds no ONNX diffusers export (no model_index.json or unet/model.onnx). */
  | 'not-onnx'
  /** The files arrived intact but the folder is not a model easel can load. */
  | 'invalid-model'
  /** The target folder holds something else (another repository, or a folder easel did not pull). */
  | 'folder-taken'
  /** The pull was asked for with a bad repository id, name or revision. */
  | 'bad-request'
  /** Writing the folder failed (disk full, permissions). */
  | 'disk'
  /** The caller aborted (Ctrl-C); partial files stay and the next pull resumes them. */
  | 'interrupted';

export class PullError extends Error {
  constructor(
    readonly code: PullErrorCode,
    message: string,
    /** For invalid-model: the problems inspectModelFolder found, one per file. */
    readonly problems: readonly string[] = [],
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'PullError';
    this.status = options?.status;
  }

  /** The HTTP status behind a 'hub' error. */
  readonly status?: number;
}

/** A file-system failure as a PullError naming the path and, for the common causes, the remedy. */
export function diskError(path: string, error: unknown): PullError {
  if (error instanceof PullError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOSPC'
      ? 'no space left on the device'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'the file system is read-only'
          : code === 'EDQUOT'
            ? 'the disk quota is exhausted'
            : (error as Error).message;
  return new PullError('disk', `cannot write ${path}: ${why}`, [], { cause: error });
}
