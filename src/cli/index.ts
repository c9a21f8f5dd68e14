import { ConfigError } from '../config/index.ts';
import { serve } from './serve.ts';

const USAGE = `Usage: easel <command>

Commands:
  serve     Start the server (HOST, PORT, EASEL_DATA_DIR, EASEL_API_KEYS, EASEL_CONFIG …; see README)
  help      Show this help
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'help'] = argv;
  switch (command) {
    case 'serve':
      await serve();
      return -1; // keeps running
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`easel: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    // Known failures (bad configuration, a data directory in use) need their message, not a stack.
    const detail = error instanceof Error ? (process.env.EASEL_LOG_LEVEL === 'debug' ? error.stack : error.message) : String(error);
    process.stderr.write(`easel: ${detail}\n`);
    process.exit(error instanceof ConfigError ? 78 : 1);
  },
);
