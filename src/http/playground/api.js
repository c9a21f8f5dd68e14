// Calls to easel's Azure routes: the api-key header, readable errors, server-sent events, and the
// DALL-E 2 operation polling.

const KEY_STORAGE = 'easel.apiKey';

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) ?? '',
  set: (value) => (value ? localStorage.setItem(KEY_STORAGE, value) : localStorage.removeItem(KEY_STORAGE)),
  /**
   * Where the key is typed. Each request reads it from there (and saves it), so a key that is
   * visibly in the field is the one used, whether or not Save was pressed.
   */
  input: null,
  /** The key to send: what the field holds (saved on the way), else the saved one. */
  current() {
    if (this.input) {
      const typed = this.input.value.trim();
      if (typed !== this.get()) this.set(typed);
      return typed;
    }
    return this.get();
  },
};

/** An error whose message is meant for people: Azure's `error.message`, or what went wrong. */
export class ApiProblem extends Error {
  constructor(message, { status = 0, code = '', error = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    /** Azure's `error` object as the server sent it (its inner_error names the filter categories). */
    this.error = error;
  }
}

/** Turn a failed response (Azure's envelope `{"error":{"code","message"}}`) into an ApiProblem. */
export async function problemOf(response) {
  if (response.status === 401) {
    return new ApiProblem('The server did not accept the API key (401). Enter a valid key at the top of the page.', {
      status: 401,
      code: '401',
    });
  }
  let message = `The server answered ${response.status} ${response.statusText}.`;
  let code = '';
  let error = null;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
    code = body?.error?.code ?? '';
    error = body?.error ?? null;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 429) message += ` Retry in ${response.headers.get('retry-after') ?? 'a few'} seconds.`;
  return new ApiProblem(message, { status: response.status, code, error });
}

function headers(extra = {}) {
  const key = apiKey.current();
  if (!key)
    throw new ApiProblem(
      'Enter your API key at the top of the page first (npm start prints it; it is also in data/api-keys.json).',
    );
  return { 'api-key': key, ...extra };
}

async function call(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiProblem(`Could not reach the server: ${error.message}`);
  }
  if (!response.ok) throw await problemOf(response);
  return response;
}

export function postJson(url, body) {
  return call(url, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify(body),
  });
}

export function postForm(url, form) {
  return call(url, { method: 'POST', headers: headers(), body: form });
}

export async function getJson(url) {
  return (await call(url, { headers: headers() })).json();
}

/**
 * Read `event:`/`data:` blocks from a text/event-stream response body and call `onEvent(name, data)`
 * for each, with data parsed as JSON. An `error` event becomes a thrown ApiProblem.
 */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
    if (done) break;
  }
  if (buffer.trim()) dispatch(buffer, onEvent);
}

function dispatch(block, onEvent) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return;
  const payload = JSON.parse(data.join('\n'));
  if (name === 'error' || payload.type === 'error') {
    throw new ApiProblem(payload.error?.message ?? 'The generation failed.', {
      code: payload.error?.code ?? '',
      error: payload.error ?? null,
    });
  }
  onEvent(name, payload);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * DALL-E 2: follow `operation-location`, waiting `retry-after` seconds between polls, reporting each
 * status; resolves with the succeeded operation.
 */
export async function pollOperation(submitted, onStatus) {
  const location = submitted.headers.get('operation-location');
  if (!location) throw new ApiProblem('The server accepted the request but sent no operation-location.');
  // Same origin as the page, whatever host name the server wrote into the absolute URL.
  const url = new URL(location, window.location.href);
  const path = url.pathname + url.search;
  let wait = Number(submitted.headers.get('retry-after') ?? 1);
  let operation = await submitted.json();
  onStatus(operation.status);
  for (;;) {
    await sleep(Math.max(0.2, Math.min(wait, 10)) * 1000);
    const response = await call(path, { headers: headers() });
    operation = await response.json();
    onStatus(operation.status);
    if (operation.status === 'succeeded') return operation;
    if (operation.status === 'failed' || operation.status === 'canceled' || operation.status === 'deleted') {
      const problem = new ApiProblem(operation.error?.message ?? `The operation ended: ${operation.status}.`, {
        code: operation.error?.code ?? '',
        error: operation.error ?? null,
      });
      // The whole operation failed (its prompt was refused, or the job failed), not one image.
      problem.operation = true;
      throw problem;
    }
    wait = Number(response.headers.get('retry-after') ?? 1);
  }
}
