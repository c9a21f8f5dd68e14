/**
 * The one catalogue of errors easel sends. Every 4xx/5xx body is built here, in Azure's envelope
 * `{"error":{"code","message","param","type","inner_error"?}}`; the HTTP error handler only writes
 * what an ApiError carries. Codes and messages follow what Azure sends where it is known
 * (reference/azure-images-api.md §5.2); tests assert codes, never message text.
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

  constructor(init: {
    status: number;
    code: string;
    message: string;
    param?: string | null;
    type?: string | null;
    innerError?: unknown;
    headers?: Record<string, string>;
  }) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    this.param = init.param ?? null;
    this.type = init.type ?? null;
    this.innerError = init.innerError;
    this.headers = init.headers ?? {};
  }

  toWire(): { error: WireError } {
    const error: WireError = { code: this.code, message: this.message, param: this.param, type: this.type };
    if (this.innerError !== undefined) error.inner_error = this.innerError;
    return { error };
  }
}

const INVALID_REQUEST = 'invalid_request_error';

export const errors = {
  /** Missing or wrong key. Azure answers code "401" with this exact text. */
  unauthorized: () =>
    new ApiError({
      status: 401,
      code: '401',
      message:
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
    }),

  deploymentNotFound: () =>
    new ApiError({
      status: 404,
      code: 'DeploymentNotFound',
      message:
        'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
    }),

  /** Unknown route, or an operation the given api-version does not have. */
  resourceNotFound: () => new ApiError({ status: 404, code: '404', message: 'Resource not found' }),

  operationNotFound: (id: string) =>
    new ApiError({ status: 404, code: 'NotFound', message: `The operation '${id}' does not exist.`, type: INVALID_REQUEST }),

  /** Azure answers a request without api-version as it answers an unknown route. */
  missingApiVersion: (): ApiError => errors.resourceNotFound(),

  apiVersionNotSupported: () =>
    new ApiError({ status: 400, code: 'BadRequest', message: 'API version not supported', param: 'api-version' }),

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

  /** A generated image failed the image filter (sync routes); `reason` names the filter and category. */
  generatedImageFiltered: (reason?: string) =>
    new ApiError({
      status: 400,
      code: 'contentFilter',
      message: `Generated image was filtered as a result of our safety system${reason ? `: ${reason}` : ''}.`,
      type: INVALID_REQUEST,
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
   * The server is stopping and this request's job had not started (or ran past the shutdown grace
   * period). 503, which the SDKs retry: another instance, or this one once restarted, can serve it.
   */
  shuttingDown: (requestId: string) =>
    new ApiError({
      status: 503,
      code: 'ServiceUnavailable',
      message: `The server is shutting down and did not finish this request; retry it. Request id: ${requestId}.`,
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
  imageFilteredBy: (reason: string) => ({ code: 'contentFilter', message: `Generated image was filtered as a result of our safety system: ${reason}.` }),
  interrupted: {
    code: 'internalFailure',
    message: 'The server restarted while this operation was running. Submit it again.',
  },
  timedOut: { code: 'timeout', message: 'The operation did not finish in the allotted time and was canceled.' },
  /** The engine's own account of a failed job (a model error), with server internals taken out. */
  engineFailed: (detail: string) => ({ code: 'internalFailure', message: `Image generation failed: ${redactInternals(detail)}` }),
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
    .replace(/(?<![\w:/.~-])(?:[A-Za-z]:\\|\/)(?:[^\s'"`,;()\\/]+[\\/])+[^\s'"`,;()\\/]*/g, (path) => `…/${lastPart(path)}`)
    .replace(/,?\s*\b(?:errno|syscall)\b\s*[:=]?\s*['"]?[-\w]+['"]?/gi, '')
    .replace(ERRNO_CODE, 'error');
}

const ERRNO_CODE =
  /\bE(?:ACCES|PERM|NOENT|NOSPC|ROFS|IO|EXIST|ISDIR|NOTDIR|NOTEMPTY|MFILE|NFILE|DQUOT|BUSY|AGAIN|NOMEM|XDEV|BADF|INVAL|PIPE|CONNREFUSED|CONNRESET|TIMEDOUT|FBIG|LOOP|NAMETOOLONG)\b/g;

function lastPart(path: string): string {
  return path.replace(/[\\/]+$/, '').split(/[\\/]/).at(-1) ?? '';
}
