// The one command framework of the CLI (commander): every command gets the same --help, option
// parsing, error messages and exit codes. Commands live one per file and add themselves here.
import { readFileSync } from 'node:fs';

import { Command, CommanderError } from 'commander';

import { ConfigError } from '../config/index.ts';

export const EXIT = {
  ok: 0,
  failure: 1,
  /** Unknown command or option, missing or bad argument. */
  usage: 2,
  /** sysexits EX_UNAVAILABLE: a service a scale-out role needs (Redis, PostgreSQL, S3) cannot be reached. */
  unavailable: 69,
  /** sysexits EX_CONFIG: invalid configuration (ConfigError). */
  config: 78,
  /** 128 + SIGINT, as shells report Ctrl-C. */
  interrupted: 130,
} as const;

/** What commands share: where they write, and whether the process stays up when the action returns. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Set by `serve` and `worker`: the server keeps the process alive, so main must not exit. */
  keepRunning: boolean;
  /** Set by an action that failed in a way it has already reported (1 when unset). */
  exitCode?: number;
}

/** A failure an action has already explained, or one whose message is the whole story: no stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

type AddCommand = (program: Command, context: CliContext) => void;

export function createProgram(context: CliContext, commands: readonly AddCommand[]): Command {
  const program = new Command('easel')
    .description('Self-hosted image generation that speaks the Azure OpenAI Images API.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    // Set before the commands are added, so that each inherits them.
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({
      writeOut: (text) => context.stdout.write(text),
      writeErr: (text) => context.stderr.write(text),
      // commander writes "error: …"; every easel failure reads "easel: …".
      outputError: (text, write) => write(text.replace(/^error: /, 'easel: ')),
    });
  for (const add of commands) add(program, context);
  // After a mistake in a command: the message, its usage line and where the rest is (the whole
  // help would push the message off the screen). The program itself shows its short full help.
  for (const command of program.commands) {
    command.showHelpAfterError(
      `Usage: easel ${command.name()} ${command.usage()}\nRun 'easel ${command.name()} --help' for the options.`,
    );
  }
  return program;
}

/**
 * Parses `argv` (without node and the script) and runs the command; answers the exit code, or
 * undefined when the command keeps running (serve). Reports every failure on stderr.
 */
export async function runProgram(
  program: Command,
  context: CliContext,
  argv: readonly string[],
): Promise<number | undefined> {
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.ok;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return context.keepRunning ? undefined : (context.exitCode ?? EXIT.ok);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has written the message and the usage already; help and --version end here too.
      // `easel help <unknown>` ends in help on stderr with exit code 1: a usage error like the rest.
      const informational =
        ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code) && error.exitCode === 0;
      return informational ? EXIT.ok : EXIT.usage;
    }
    // Known failures (bad configuration, a data directory in use, a failed pull) need their message, not a stack.
    const debug = context.env.EASEL_LOG_LEVEL === 'debug';
    const detail =
      error instanceof Error ? (debug && !(error instanceof CliError) ? error.stack : error.message) : String(error);
    context.stderr.write(`easel: ${detail}\n`);
    if (error instanceof ConfigError) return EXIT.config;
    return error instanceof CliError ? error.exitCode : EXIT.failure;
  }
}

/** A usage error found after parsing (a missing argument that depends on options): message, usage, exit 2. */
export function usageError(command: Command, message: string): never {
  command.error(`error: ${message}`, { exitCode: EXIT.usage, code: 'easel.usage' });
}

function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
