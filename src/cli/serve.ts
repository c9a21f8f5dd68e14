import type { Command } from 'commander';

import { type App, type AppOptions, createApp } from '../app.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { keysFilePath } from '../config/keys.ts';
import { clientUrl } from './address.ts';
import { createLogger, logFormat } from './logger.ts';
import { type CliContext, CliError } from './program.ts';

export function addServeCommand(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('start the server')
    .addHelpText(
      'after',
      '\nSettings come from the environment (HOST, PORT, EASEL_DATA_DIR, EASEL_API_KEYS, EASEL_MODEL, EASEL_MODELS_DIR,\n' +
        'EASEL_LOG_FORMAT json|pretty …) and the JSON file named by EASEL_CONFIG; see the README, "Configuration".\n',
    )
    .action(async () => {
      await serve(context);
      context.keepRunning = true;
    });
}

/**
 * `easel serve`: load the configuration, start the server, stop cleanly on SIGINT/SIGTERM.
 * `options` replace parts of the app (tests run the real process with an engine they control).
 */
export async function serve(
  context: Pick<CliContext, 'env' | 'stdout'>,
  options: Pick<AppOptions, 'engine'> = {},
): Promise<void> {
  const config = loadConfig(context.env);
  const logger = createLogger(config.logLevel, logFormat(context.env, context.stdout), context.stdout);
  const app = await createApp(config, { logger, ...options });
  const address = await listen(app, config);
  const port = (app.server.server.address() as { port: number }).port;
  const url = clientUrl(config.host, port);
  // Only now is a generated key saved (and then printed below): a start that failed kept nothing.
  app.listening(url);

  for (const d of app.services.deployments.values()) {
    logger.info(
      { deployment: d.name, model: d.model, engine: d.engineName },
      `deployment ${d.name} (${d.model}) uses the ${d.engineName} engine`,
    );
  }
  if ([...app.services.deployments.values()].some((d) => d.engineName === 'placeholder')) {
    logger.warn(
      'Some deployments use the placeholder engine: their images show the prompt, not a picture of it. ' +
        'For real images: `npx easel pull sdxl-turbo`, then start with EASEL_MODEL=sdxl-turbo (README, "Real images").',
    );
  }
  logger.info({ address, dataDir: config.dataDir, keys: app.apiKeys.source }, `easel listening on ${address}`);
  context.stdout.write(banner(app, config, url));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const graceSeconds = config.queue.shutdownGraceSeconds;
    logger.info({ signal, graceSeconds }, 'shutting down');
    // The promise made to operators: the process is gone by the end of the grace period, even if
    // something (a hung engine, a stuck connection) ignores the orderly close below.
    setTimeout(
      () => {
        logger.error({ graceSeconds }, 'shutdown did not finish within the grace period; exiting now');
        process.exit(1);
      },
      Math.max(1, graceSeconds) * 1000,
    ).unref();
    try {
      await app.close();
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/** listen, or a message that says which setting moves the server when the address is unusable. */
async function listen(app: App, config: Config): Promise<string> {
  try {
    return await app.server.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${config.host}:${config.port}`;
    const movePort = `start on another port with PORT (e.g. PORT=${config.port === 8080 ? 8081 : 8080} npm start) or "port" in the EASEL_CONFIG file`;
    if (code === 'EADDRINUSE')
      throw new CliError(
        `port ${config.port} on ${config.host} is already in use (another easel, or another program): ${movePort}, or stop what holds it`,
      );
    if (code === 'EACCES')
      throw new CliError(`not allowed to listen on ${where} (ports below 1024 need privileges): ${movePort}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new CliError(
        `cannot listen on ${where}: ${config.host} is not an address of this machine; set HOST (or "host" in the EASEL_CONFIG file), e.g. HOST=127.0.0.1`,
      );
    }
    throw error;
  }
}

/** What a person starting the server needs first: the playground's address and the key. */
function banner(app: App, config: Config, url: string): string {
  const lines = [
    ``,
    `  easel is running: ${url}`,
    `  Playground: ${url}/  (open it in a browser and paste the API key)`,
  ];
  if (app.apiKeys.generated) {
    lines.push(
      ``,
      `  A new API key was generated and saved in ${keysFilePath(config.dataDir)}:`,
      ``,
      `    ${app.apiKeys.generated}`,
      ``,
      `  Send it as the 'api-key' header (or 'Authorization: Bearer …'). Set EASEL_API_KEYS to choose your own.`,
    );
  } else if (app.apiKeys.source === 'data directory') {
    lines.push(`  API key: the one saved in ${keysFilePath(config.dataDir)} (\`npx easel keys --reveal\` prints it)`);
  } else {
    lines.push(`  API keys: those in EASEL_API_KEYS`);
  }
  return `${lines.join('\n')}\n\n`;
}
