// How a long-running command (serve, worker) stops on SIGINT/SIGTERM: an orderly close within the
// shutdown grace period, and an exit when the period is over whatever still runs.
import { ServicesUnreachableError } from '../config/check-services.ts';
import { WorkerRegistryError } from '../jobs/worker-registry.ts';
import { CliError, EXIT } from './program.ts';

interface StopLog {
  info(obj: object | string, msg?: string): void;
  error(obj: object, msg: string): void;
}

/** Calls `close` on the first SIGINT or SIGTERM, then exits (0 once closed, 1 when it failed or overran). */
export function stopOnSignals(log: StopLog, graceSeconds: number, close: () => Promise<void>): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceSeconds }, 'shutting down');
    // The promise made to operators: the process is gone by the end of the grace period, even if
    // something (a hung engine, a stuck connection) ignores the orderly close below.
    setTimeout(
      () => {
        log.error({ graceSeconds }, 'shutdown did not finish within the grace period; exiting now');
        process.exit(1);
      },
      Math.max(1, graceSeconds) * 1000,
    ).unref();
    try {
      await close();
    } catch (error) {
      log.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/**
 * A scale-out role that could not reach one of its services at start-up: its message (one line per
 * service, naming the variable) and exit code 69, so a process manager can tell it from a bad configuration (78).
 */
export function unreachableAtStart(error: unknown): unknown {
  if (error instanceof ServicesUnreachableError || error instanceof WorkerRegistryError)
    return new CliError(error.message, EXIT.unavailable);
  return error;
}
