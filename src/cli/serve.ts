import type { Command } from 'commander';
import { pino } from 'pino';
import { createApp, type AppOptions } from '../app.ts';
import { loadConfig } from '../config/index.ts';
import type { CliContext } from './program.ts';

export function addServeCommand(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('start the server')
    .addHelpText(
      'after',
      '\nSettings come from the environment (HOST, PORT, EASEL_DATA_DIR, EASEL_API_KEYS, EASEL_MODEL, EASEL_MODELS_DIR …)\n' +
        'and the JSON file named by EASEL_CONFIG; see the README, "Configuration".\n',
    )
    .action(async () => {
      await serve();
      context.keepRunning = true;
    });
}

/**
 * `easel serve`: load the configuration, start the server, stop cleanly on SIGINT/SIGTERM.
 * `options` replace parts of the app (tests run the real process with an engine they control).
 */
export async function serve(options: Pick<AppOptions, 'engine'> = {}): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel });
  const app = await createApp(config, { logger, ...options });
  const address = await app.server.listen({ host: config.host, port: config.port });

  for (const d of app.services.deployments.values()) {
    logger.info({ deployment: d.name, model: d.model, engine: d.engineName }, `deployment ${d.name} (${d.model}) uses the ${d.engineName} engine`);
  }
  if ([...app.services.deployments.values()].some((d) => d.engineName === 'placeholder')) {
    logger.warn(
      'Some deployments use the placeholder engine: their images show the prompt, not a picture of it. ' +
        'For real images: `npx easel pull sdxl-turbo`, then start with EASEL_MODEL=sdxl-turbo (README, "Real images").',
    );
  }
  logger.info({ address, dataDir: config.dataDir, keys: app.apiKeys.source }, `easel listening on ${address}`);
  if (app.apiKeys.generated) {
    // Printed once, on the first start; later starts read it from the data directory.
    process.stdout.write(
      `\n  A new API key was generated and saved in ${config.dataDir}/api-keys.json:\n\n    ${app.apiKeys.generated}\n\n` +
        `  Send it as the 'api-key' header (or 'Authorization: Bearer …'). Set EASEL_API_KEYS to choose your own.\n\n`,
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const graceSeconds = config.queue.shutdownGraceSeconds;
    logger.info({ signal, graceSeconds }, 'shutting down');
    // The promise made to operators: the process is gone by the end of the grace period, even if
    // something (a hung engine, a stuck connection) ignores the orderly close below.
    setTimeout(() => {
      logger.error({ graceSeconds }, 'shutdown did not finish within the grace period; exiting now');
      process.exit(1);
    }, Math.max(1, graceSeconds) * 1000).unref();
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
