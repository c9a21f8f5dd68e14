/**
 * The one catalogue of errors easel sends. Every 4xx/5xx body is built here, in Azure's envelope
 * `{"error":{"code","message","param","type","inner_error"?}}`; the HTTP error handler only writes
 * what an ApiError carries. Codes and messages follow what Azure sends where it is known
 * (docs/azure-api.md, "Errors"); tests assert codes, never message text.
 */

export interface WireError {
  code: string;
  message: string;
  param: string | null;
  type: string | null;
  inner_error?: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly param: string | null;
  readonly type: string | null;
  readonly innerError: unknown;
  /** Extra response headers (retry-after on 429). */
  readonly headers: Record<string, string>;
  /**
   * Why easel refused, for a local user, where Azure's body must stay exactly as Azure sends it:
   * written to the server log line of the request and to the `x-easel-error-reason` header, never
   * to the body.
   */
  readonly reason: string | null;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    param?: string | null;
    type?: string | null;
    innerError?: unknown;
    headers?: Record<string, string>;
    reason?: string | null;
  }) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    this.param = init.param ?? null;
    this.type = init.type ?? null;
    this.innerError = init.innerError;
    this.headers = init.headers ?? {};
    this.reason = init.reason ?? null;
  }

  toWire(): { error: WireError } {
    const error: WireError = { code: this.code, message: this.message, param: this.param, type: this.type };
    if (this.innerError !== undefined) error.inner_error = this.innerError;
    return { error };
  }
}

const INVALID_REQUEST = 'invalid_request_error';

export const errors = {
  /**
   * Missing or wrong key. Azure answers code "401" with this exact text, whatever the cause;
   * `reason` says which cause it was (log and header only).
   */
  unauthorized: (reason: string | null = null) =>
    new ApiError({
      status: 401,
      code: '401',
      message:
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
      reason,
    }),

  /** Azure's text, then the deployments this server has (a local user cannot list them elsewhere). */
  deploymentNotFound: (name: string | null = null, known: readonly string[] = []) =>
    new ApiError({
      status: 404,
      code: 'DeploymentNotFound',
      message:
        'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.' +
        (known.length > 0 ? ` Deployments on this server: ${known.join(', ')}.` : ''),
      reason: `no deployment named ${JSON.stringify((name ?? '').slice(0, 100))}; this server has ${known.join(', ') || 'none'}`,
    }),

  /** Unknown route, or an operation the given api-version does not have. */
  resourceNotFound: (reason: string | null = null) =>
    new ApiError({ status: 404, code: '404', message: 'Resource not found', reason }),

  operationNotFound: (id: string) =>
    new ApiError({
      status: 404,
      code: 'NotFound',
      message: `The operation '${id}' does not exist.`,
      type: INVALID_REQUEST,
    }),

  /** Azure answers a request without api-version as it answers an unknown route. */
  missingApiVersion: (): ApiError =>
    errors.resourceNotFound(
      'the api-version query parameter is missing (this route needs one, e.g. ?api-version=2024-10-21)',
    ),

  /** Azure's text, then what this server accepts on the route, so an old script knows what to move to. */
  apiVersionNotSupported: (version: string, supported: string) =>
    new ApiError({
      status: 400,
      code: 'BadRequest',
      message: `API version not supported. Supported api-version values: ${supported}.`,
      param: 'api-version',
      reason: `api-version ${JSON.stringify(version.slice(0, 100))} is not supported; supported: ${supported}`,
    }),

  modelNeedsNewerApiVersion: (model: string, minimum: string) =>
    new ApiError({
      status: 400,
      code: 'BadRequest',
      message: `Model ${model} is enabled only for api versions ${minimum} and later`,
      param: 'api-version',
    }),

  invalidParameter: (param: string | null, message: string) =>
    new ApiError({ status: 400, code: 'invalid_parameter', message, param, type: INVALID_REQUEST }),

  missingParameter: (param: string) =>
    new ApiError({
      status: 400,
      code: 'missing_required_parameter',
      message: `Missing required parameter: '${param}'.`,
      param,
      type: INVALID_REQUEST,
    }),

  unknownParameter: (param: string) =>
    new ApiError({
      status: 400,
      code: 'unknown_parameter',
      message: `Unrecognized request argument supplied: ${param}`,
      param,
      type: INVALID_REQUEST,
    }),

  unsupportedParameter: (param: string, model: string) =>
    new ApiError({
      status: 400,
      code: 'unsupported_parameter',
      message: `The parameter '${param}' is not supported with the model ${model}.`,
      param,
      type: INVALID_REQUEST,
    }),

  invalidJson: (detail?: string) =>
    new ApiError({
      status: 400,
      code: 'invalid_json',
      message: `The request body is not valid JSON${detail ? `: ${detail}` : '.'}`,
      param: null,
      type: INVALID_REQUEST,
    }),

  unsupportedMediaType: (expected: string, got: string | undefined) =>
    new ApiError({
      status: 415,
      code: 'unsupported_media_type',
      message: `Expected Content-Type ${expected}, got ${got ?? 'none'}.`,
      param: 'content-type',
      type: INVALID_REQUEST,
    }),

  payloadTooLarge: (param: string | null, limitBytes: number) =>
    new ApiError({
      status: 413,
      code: 'payload_too_large',
      message: `${param ? `'${param}'` : 'The request body'} is larger than the limit of ${limitBytes} bytes.`,
      param,
      type: INVALID_REQUEST,
    }),

  invalidImage: (param: string, message: string) =>
    new ApiError({ status: 400, code: 'invalid_image', message, param, type: INVALID_REQUEST }),

  operationNotSupported: (model: string, operation: string) =>
    new ApiError({
      status: 400,
      code: 'OperationNotSupported',
      message: `The ${operation} operation does not work with the specified model, ${model}. Please choose different model and try again.`,
      param: 'model',
      type: INVALID_REQUEST,
    }),

  operationNotTerminal: (id: string, status: string) =>
    new ApiError({
      status: 409,
      code: 'Conflict',
      message: `The operation '${id}' is ${status}; only operations that have ended can be deleted.`,
      type: INVALID_REQUEST,
    }),

  /**
   * An image link (GET /files/…) whose signature is valid but whose `se` has passed. 403, as a blob
   * SAS URL past its expiry answers; the signature is the credential, so this is an auth failure.
   */
  imageLinkExpired: () =>
    new ApiError({ status: 403, code: 'AuthenticationFailed', message: 'This image link has expired.' }),

  /** An image link whose signature does not match its path and expiry (tampered, truncated, or missing). */
  imageLinkInvalid: () =>
    new ApiError({
      status: 403,
      code: 'AuthenticationFailed',
      message: 'This image link is not valid: its signature does not match.',
    }),

  /** A correctly signed link to image bytes that are gone (swept, or deleted with their operation). */
  imageNotFound: () => new ApiError({ status: 404, code: 'BlobNotFound', message: 'The image no longer exists.' }),

  /** The current Azure shape for a blocked prompt (DALL-E 3, gpt-image-1). */
  contentPolicyViolation: (contentFilterResults: unknown, revisedPrompt?: string) =>
    new ApiError({
      status: 400,
      code: 'content_policy_violation',
      message:
        'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.',
      type: INVALID_REQUEST,
      innerError: {
        code: 'ResponsibleAIPolicyViolation',
        content_filter_results: contentFilterResults,
        ...(revisedPrompt !== undefined ? { revised_prompt: revisedPrompt } : {}),
      },
    }),

  /**
   * A generated image failed the image filter (sync routes); `reason` names the filter and category,
   * and the image's annotations go in `inner_error` where a blocked prompt carries its own.
   */
  generatedImageFiltered: (reason?: string, contentFilterResults?: unknown) =>
    new ApiError({
      status: 400,
      code: 'contentFilter',
      message: `Generated image was filtered as a result of our safety system${reason ? `: ${reason}` : ''}.`,
      type: INVALID_REQUEST,
      ...(contentFilterResults !== undefined
        ? { innerError: { code: 'ResponsibleAIPolicyViolation', content_filter_results: contentFilterResults } }
        : {}),
    }),

  tooManyRequests: (retryAfterSeconds: number, reason = 'its queue is full') =>
    new ApiError({
      status: 429,
      code: '429',
      message: `Requests to the ImageGenerations_Create Operation have exceeded the capacity of this easel server: ${reason}. Please retry after ${retryAfterSeconds} seconds.`,
      headers: { 'retry-after': String(retryAfterSeconds), 'retry-after-ms': String(retryAfterSeconds * 1000) },
    }),

  /** The job ran past queue.jobTimeoutSeconds. 500, not 408: the SDKs would retry a 408 at once. */
  generationTimedOut: () =>
    new ApiError({
      status: 500,
      code: 'Timeout',
      message: 'The image generation did not finish in the allotted time and was canceled.',
      type: 'server_error',
    }),

  /** The engine failed on this job (a model error, not bad input); other jobs are unaffected. */
  generationFailed: (reason: string, requestId: string) =>
    new ApiError({
      status: 500,
      code: 'InternalServerError',
      message: `The image generation failed: ${redactInternals(reason)}. Request id: ${requestId}.`,
      type: 'server_error',
    }),

  deploymentUnavailable: (deployment: string, reason: string) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: `The deployment '${deployment}' is not available: ${redactInternals(reason)}`,
    }),

  /**
   * Scale-out: no live worker has this deployment ready (none started, all gone, or all still loading
   * it). 503, which the SDKs retry; `loading` workers that are still loading it make the wait short.
   */
  noLiveWorker: (deployment: string, loading = 0) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message:
        `No live worker serves the deployment '${deployment}'` +
        (loading > 0
          ? `: ${loading} worker${loading === 1 ? ' is' : 's are'} still loading it; retry shortly.`
          : '. Start a worker (easel worker) that has this deployment, then retry.'),
      // A worker that starts announces itself within workers.heartbeatSeconds (default 5).
      headers: { 'retry-after': '5' },
      reason: `no worker heard from within workers.deadAfterSeconds has ${JSON.stringify(deployment.slice(0, 100))} ready`,
    }),

  /**
   * The server is stopping and this request's job had not started (or ran past the shutdown grace
   * period). 503, which the SDKs retry: another instance, or this one once restarted, can serve it.
   */
  shuttingDown: (requestId: string) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: `The server is shutting down and did not finish this request; retry it. Request id: ${requestId}.`,
    }),

  /**
   * The shared job queue (Redis) cannot be reached, or lost a job it held. 503, which the SDKs
   * retry; `reason` (log and header only) says what failed.
   */
  queueUnavailable: (reason: string | null = null) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: 'The job queue service is not available at the moment; retry the request.',
      reason,
    }),

  /** A path with broken percent-encoding (`%zz`, a lone `%`): the router cannot decode it. */
  malformedUrl: () =>
    new ApiError({
      status: 400,
      code: 'BadRequest',
      message: 'The request URL is not valid: it holds malformed percent-encoding.',
      type: INVALID_REQUEST,
    }),

  /** A path segment (deployment or operation id) longer than the router reads. */
  uriTooLong: (maxSegment: number) =>
    new ApiError({
      status: 414,
      code: '414',
      message: `The request URL is too long: a path segment is longer than ${maxSegment} characters.`,
      type: INVALID_REQUEST,
    }),

  /** Written by the HTTP parser's error handler: the request never reached a route. */
  headersTooLarge: () =>
    new ApiError({
      status: 431,
      code: '431',
      message: 'The request headers are too large.',
      type: INVALID_REQUEST,
    }),

  /** The client did not finish sending its request (headers and body) in time. */
  requestTimeout: (seconds: number) =>
    new ApiError({
      status: 408,
      code: '408',
      message: `The request was not received completely within ${seconds} seconds.`,
      type: INVALID_REQUEST,
    }),

  /** Node's HTTP parser rejected the bytes (a bad request line, an invalid header character …). */
  malformedHttp: (detail: string) =>
    new ApiError({
      status: 400,
      code: 'BadRequest',
      message: `The request is not valid HTTP: ${detail}.`,
      type: INVALID_REQUEST,
    }),

  /** The body ended before its Content-Length, or the connection closed mid-body. */
  requestAborted: () =>
    new ApiError({
      status: 400,
      code: 'BadRequest',
      message: 'The request body ended before the length its Content-Length announced.',
      type: INVALID_REQUEST,
    }),

  /** Any other refusal of Fastify's with a 4xx status: its text, in the envelope. */
  requestRejected: (status: number, detail: string) =>
    new ApiError({
      status,
      code: status === 400 ? 'BadRequest' : String(status),
      message: `The request was rejected: ${detail}`,
      type: INVALID_REQUEST,
    }),

  /** An `Expect` header other than 100-continue (Node would answer a bare 417). */
  expectationFailed: (expect: string) =>
    new ApiError({
      status: 417,
      code: '417',
      message: `The server does not meet the expectation ${JSON.stringify(expect.slice(0, 100))}; only 100-continue is supported.`,
      param: 'expect',
      type: INVALID_REQUEST,
    }),

  /**
   * The image store (an S3 bucket, the data directory) cannot be reached or refused easel's
   * credentials. 503, which the SDKs retry; the store's own error goes to the log, not the client.
   */
  storageUnavailable: (requestId: string) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: `The image store is unavailable; retry the request later. Request id: ${requestId}.`,
      headers: { 'retry-after': '10' },
    }),

  /**
   * Scale-out: the operation database (PostgreSQL) cannot be reached. 503, which the SDKs retry; the
   * driver's own error goes to the log, not the client.
   */
  databaseUnavailable: (requestId: string) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: `The operation database is unavailable; retry the request later. Request id: ${requestId}.`,
      headers: { 'retry-after': '10' },
    }),

  /** The server is shutting down and takes no new requests. */
  notAcceptingRequests: () =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: 'The server is shutting down. Retry against another instance or after it restarts.',
      headers: { connection: 'close' },
    }),

  /**
   * The client went away and its job was cancelled. Nobody reads this answer: it names the outcome
   * in the server's log (499, as proxies record a client that closed its request).
   */
  jobCanceled: (requestId: string) =>
    new ApiError({
      status: 499,
      code: 'ClientClosedRequest',
      message: `The client closed the connection before the image generation finished. Request id: ${requestId}.`,
    }),

  /**
   * An error rebuilt from its wire form: a failed job's catalogue error as it crossed from the
   * process that ran the job (jobs/job-contract.ts, JobFailure). Of the headers only retry-after crosses;
   * the log-only reason does not.
   */
  fromWire: (status: number, wire: WireError, retryAfterSeconds?: number) =>
    new ApiError({
      status,
      code: wire.code,
      message: wire.message,
      param: wire.param,
      type: wire.type,
      ...(wire.inner_error !== undefined ? { innerError: wire.inner_error } : {}),
      ...(retryAfterSeconds !== undefined ? { headers: { 'retry-after': String(retryAfterSeconds) } } : {}),
    }),

  internal: (requestId: string) =>
    new ApiError({
      status: 500,
      code: 'InternalServerError',
      message: `The server had an error while processing your request. Request id: ${requestId}.`,
      type: 'server_error',
    }),
};

/** Errors stored on DALL-E 2 operations and per-item results (Azure Core error shape). */
export const operationErrors = {
  promptFiltered: { code: 'contentFilter', message: 'Your task failed as a result of our safety system.' },
  imageFiltered: { code: 'contentFilter', message: 'Generated image was filtered as a result of our safety system.' },
  /** imageFiltered, naming the filter and category that withheld the item. */
  imageFilteredBy: (reason: string) => ({
    code: 'contentFilter',
    message: `Generated image was filtered as a result of our safety system: ${reason}.`,
  }),
  interrupted: {
    code: 'internalFailure',
    message: 'The server restarted while this operation was running. Submit it again.',
  },
  /** Scale-out: the operation's job ended in the queue without a worker recording the outcome (workers died). */
  workerLost: {
    code: 'internalFailure',
    message: 'The workers running this operation stopped before it finished. Submit it again.',
  },
  /** An item of a succeeded operation whose image has been swept (GET builds it; it is never stored). */
  imageExpired: { code: 'imageExpired', message: 'The image has expired.' },
  timedOut: { code: 'timeout', message: 'The operation did not finish in the allotted time and was canceled.' },
  /** The engine's own account of a failed job (a model error), with server internals taken out. */
  engineFailed: (detail: string) => ({
    code: 'internalFailure',
    message: `Image generation failed: ${redactInternals(detail)}`,
  }),
  /** Anything else (the disk, the database): the details are in the server's log under the operation id. */
  internal: (operationId: string) => ({
    code: 'internalFailure',
    message: `The server had an error while running this operation. Operation id: ${operationId}.`,
  }),
} as const;

/**
 * Take what only the server should see out of a message that may reach a client: absolute paths
 * (shortened to their last part, which still names the file), errno codes and stack lines. A second
 * line of defence: messages that carry a library's or the OS's text should not reach clients at all.
 */
export function redactInternals(text: string): string {
  return text
    .replace(/\n\s+at [^\n]*/g, '')
    .replace(/file:\/\/\S+/g, (url) => `…/${lastPart(url)}`)
    .replace(
      /(?<![\w:/.~-])(?:[A-Za-z]:\\|\/)(?:[^\s'"`,;()\\/]+[\\/])+[^\s'"`,;()\\/]*/g,
      (path) => `…/${lastPart(path)}`,
    )
    .replace(/,?\s*\b(?:errno|syscall)\b\s*[:=]?\s*['"]?[-\w]+['"]?/gi, '')
    .replace(ERRNO_CODE, 'error');
}

const ERRNO_CODE =
  /\bE(?:ACCES|PERM|NOENT|NOSPC|ROFS|IO|EXIST|ISDIR|NOTDIR|NOTEMPTY|MFILE|NFILE|DQUOT|BUSY|AGAIN|NOMEM|XDEV|BADF|INVAL|PIPE|CONNREFUSED|CONNRESET|TIMEDOUT|FBIG|LOOP|NAMETOOLONG)\b/g;

function lastPart(path: string): string {
  return (
    path
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .at(-1) ?? ''
  );
}
