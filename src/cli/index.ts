// The CLI entry (bin/easel.js and `npm start` run it): one commander program, one command per file.
import { addEditCommand, addGenerateCommand } from './images.ts';
import { addKeysCommand } from './keys.ts';
import { addModelsCommand } from './models.ts';
import { type CliContext, createProgram, runProgram } from './program.ts';
import { addPullCommand } from './pull.ts';
import { addServeCommand } from './serve.ts';
import { addWorkerCommand } from './worker.ts';

const context: CliContext = { env: process.env, stdout: process.stdout, stderr: process.stderr, keepRunning: false };
const program = createProgram(context, [
  addServeCommand,
  addWorkerCommand,
  addPullCommand,
  addModelsCommand,
  addGenerateCommand,
  addEditCommand,
  addKeysCommand,
]);
const code = await runProgram(program, context, process.argv.slice(2));
// serve and worker answer undefined: the server keeps the process alive and exits on SIGINT/SIGTERM.
// Exit once what was written has been flushed (pipes are asynchronous on some systems), without
// waiting for idle keep-alive sockets of a finished pull.
if (code !== undefined) process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
