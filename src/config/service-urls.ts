// How a service's address and a failure to reach it are shown in messages and logs: never with the
// URL's password, and with a socket error's code in words.

/** A URL as logs and messages may show it: the password (if any) replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.href;
  } catch {
    // Unparsable: drop anything that looks like user:password@.
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}

const CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};

/**
 * Why a connection or a command failed, in a few words: a socket error code's meaning (looked for in the
 * error, its `cause` and the first of an AggregateError's errors, as fetch and multi-address connects
 * wrap them), else the client's message with any user:password@ removed.
 */
export function connectionProblem(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code && CODES[code]) return CODES[code];
    current = (current as Partial<AggregateError>).errors?.[0] ?? (current as Error).cause;
  }
  if ((error as Error | null)?.name === 'TimeoutError') return 'no answer in time';
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\/\/[^/@\s]*@/g, '//***@');
}
