// The server's log: readable lines on a terminal (pino-pretty), JSON lines otherwise (files,
// pipes, log collectors), or as EASEL_LOG_FORMAT says.
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

import { envSetting } from '../config/index.ts';

export type LogFormat = 'json' | 'pretty';

/**
 * EASEL_LOG_FORMAT (json or pretty, checked against the configuration schema); unset: pretty when `stdout` is a
 * terminal.
 */
export function logFormat(env: NodeJS.ProcessEnv, stdout: { isTTY?: boolean }): LogFormat {
  return (envSetting(env, 'EASEL_LOG_FORMAT') as LogFormat | undefined) ?? (stdout.isTTY ? 'pretty' : 'json');
}

export function createLogger(
  level: string,
  format: LogFormat,
  stdout: NodeJS.WriteStream & { isTTY?: boolean },
): Logger {
  if (format === 'json') return pino({ level });
  // sync: lines appear in order with what the CLI writes itself (the key, the playground URL).
  return pino(
    { level },
    pretty({
      destination: stdout,
      sync: true,
      colorize: Boolean(stdout.isTTY),
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss',
      ignore: 'pid,hostname',
    }),
  );
}
