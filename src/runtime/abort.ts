// The one way easel races work against an AbortSignal. A signal that has already fired rejects at
// once, like fetch() and the other platform APIs that take a signal; the listener is removed when
// the work settles, so a long-lived signal does not collect one listener per call.

/**
 * Settles as `work` does, or rejects with the signal's reason as soon as it fires (at once if it
 * already has). For work that may ignore the signal: the caller stops waiting either way.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {}); // its failure no longer has anyone to reach
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
