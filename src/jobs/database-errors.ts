// Which failures of the operation store mean the database cannot be used at the moment. Kept apart
// from the PostgreSQL store so that the HTTP layer can ask without loading the driver.

/** SQLSTATE classes and codes that mean the server cannot be used now, not that a statement was wrong. */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-4])/;
/** node-postgres's own messages for a pool or connection that cannot reach the server. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|Connection refused/i;
/**
 * Socket errors of a connection that could not be made. Not ECONNRESET or EPIPE: the HTTP layer sees
 * those from its own clients. Other clients' connection errors never reach the HTTP layer unwrapped
 * (the queue, the registry and the bucket wrap theirs in catalogue errors), so what remains is the database's.
 */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Whether an error of this store means PostgreSQL cannot be reached or used at the moment (a connection
 * refused or cut, the server shutting down or out of connections), as opposed to a bug or bad data.
 * The HTTP layer answers those with the catalogue's databaseUnavailable (503).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (SOCKET_CODES.has(code) || (code.length === 5 && UNAVAILABLE_SQLSTATE.test(code))))
      return true;
    if (current instanceof Error && UNAVAILABLE_MESSAGE.test(current.message)) return true;
    current = (current as Partial<AggregateError>).errors?.[0] ?? (current as Error).cause;
  }
  return false;
}
