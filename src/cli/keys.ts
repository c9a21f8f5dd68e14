// `easel keys`: which keys the server accepts and where they come from; `easel keys rotate` adds a
// new generated key beside the current one, so clients can move over before the old one goes.
import type { Command } from 'commander';

import { loadConfig } from '../config/index.ts';
import { keysFilePath, readStoredKeys, rotateStoredKeys } from '../config/keys.ts';
import { type CliContext, CliError } from './program.ts';

export function addKeysCommand(program: Command, context: CliContext): void {
  const keys = program
    .command('keys')
    .description('show the API keys (masked) and where they come from; rotate generated keys');
  keys
    .command('show', { isDefault: true })
    .description('show the accepted keys, masked (the default)')
    .option('--reveal', 'print the keys in full')
    .action((flags: { reveal?: boolean }) => show(context, flags.reveal ?? false));
  keys
    .command('rotate')
    .description('add a new generated key, keeping the newest current one (the older of two is retired)')
    .option('--reveal', 'print the new key in full (default: it is printed once, in full, anyway)')
    .addHelpText(
      'after',
      `
The keys live in <EASEL_DATA_DIR>/api-keys.json. A running server reads them at start-up: restart it to
accept the new key (and to stop accepting a retired one). With EASEL_API_KEYS set, rotate by changing
that variable instead: it takes two keys at once (old,new), then only the new one.
`,
    )
    .action(() => rotate(context));
}

function show(context: CliContext, reveal: boolean): void {
  const config = loadConfig(context.env);
  const out = (line: string) => context.stdout.write(`${line}\n`);
  const present = (key: string) => (reveal ? key : mask(key));
  if (config.apiKeys.length > 0) {
    out('API keys from EASEL_API_KEYS:');
    config.apiKeys.forEach((key, i) => out(`  ${i + 1}  ${present(key)}`));
    return;
  }
  const stored = readStoredKeys(config.dataDir);
  const path = keysFilePath(config.dataDir);
  if (!stored) {
    out(`No API key yet in ${path}: the server generates one at its first start (or run: easel keys rotate).`);
    return;
  }
  out(`API keys generated in ${path}:`);
  stored.forEach((key, i) =>
    out(
      `  ${i + 1}  ${present(key)}${stored.length > 1 ? (i === stored.length - 1 ? '  (newest)' : '  (older: retired by the next rotation)') : ''}`,
    ),
  );
}

function rotate(context: CliContext): void {
  const config = loadConfig(context.env);
  if (config.apiKeys.length > 0) {
    throw new CliError(
      'the keys come from EASEL_API_KEYS, so rotate them there: set it to "old,new" (both accepted), ' +
        'restart the server, move the clients to the new key, then set it to the new key alone.',
    );
  }
  const { keys, added, retired } = rotateStoredKeys(config.dataDir);
  const path = keysFilePath(config.dataDir);
  context.stdout.write(
    `New API key added to ${path}:\n\n    ${added}\n\n` +
      `Accepted after the next start: ${keys.map(mask).join(', ')}${retired.length > 0 ? `; retired: ${retired.map(mask).join(', ')}` : ''}.\n` +
      'A running server reads the keys at start-up: restart it to accept the new key. Then move clients to the\n' +
      'new key; the next `easel keys rotate` retires the older one.\n',
  );
}

/** Enough to tell keys apart, not enough to use one: "3f9a…c1d2". */
export function mask(key: string): string {
  if (key.length <= 12) return `${key.slice(0, 2)}…`;
  return `${key.slice(0, 4)}…${key.slice(-4)}`;
}
