import { type Command, Option } from 'commander';
import type { FastifyInstance } from 'fastify';

import { type App, type AppOptions, createApiNode, createApp } from '../app.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { keysFilePath } from '../config/keys.ts';
import { clientUrl } from './address.ts';
import { createLogger, logFormat } from './logger.ts';
import { type CliContext, CliError } from './program.ts';
import { stopOnSignals, unreachableAtStart } from './shutdown.ts';

/** `all`: the embedded server (models, queue and storage in this process); `api`: a scale-out API node. */
export const SERVE_ROLES = ['all', 'api'] as const;
export type ServeRole = (typeof SERVE_ROLES)[number];

/** The scale-out settings, listed in the help of `serve --role api` and `worker`. */
export const SCALE_OUT_HELP =
  'Scale-out settings (docs/scale-out.md): EASEL_REDIS_URL, EASEL_DATABASE_URL, EASEL_S3_BUCKET, EASEL_S3_ENDPOINT,\n' +
  'EASEL_S3_REGION, EASEL_S3_FORCE_PATH_STYLE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';

export function addServeCommand(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('start the server')
    .addOption(
      new Option('--role <role>', 'all: the whole server in this process; api: a scale-out API node (no models)')
        .choices(SERVE_ROLES)
        .default('all'),
    )
    .addHelpText(
      'after',
      '\nSettings come from the environment (HOST, PORT, EASEL_DATA_DIR, EASEL_API_KEYS, EASEL_MODEL, EASEL_MODELS_DIR,\n' +
        'EASEL_LOG_FORMAT json|pretty …) and the JSON file named by EASEL_CONFIG; see the README, "Configuration".\n' +
        `\n--role api needs, besides EASEL_API_KEYS, EASEL_SIGNING_SECRET (the same on every API node).\n${SCALE_OUT_HELP}.\n` +
        'Exit codes: 78 invalid or missing settings, 69 a service cannot be reached.\n',
    )
    .action(async (options: { role: ServeRole }) => {
      await serve(context, {}, options.role);
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
  role: ServeRole = 'all',
): Promise<void> {
  const config = loadConfig(context.env);
  const logger = createLogger(config.logLevel, logFormat(context.env, context.stdout), context.stdout);
  let app: App;
  try {
    app = role === 'api' ? await createApiNode(config, { logger }) : await createApp(config, { logger, ...options });
  } catch (error) {
    throw unreachableAtStart(error);
  }
  const address = await listen(app.server, config.host, config.port, () => app.close());
  const port = (app.server.server.address() as { port: number }).port;
  const url = clientUrl(config.host, port);
  // Only now is a generated key saved (and then printed below): a start that failed kept nothing.
  app.listening(url);

  for (const d of role === 'api' ? [] : app.services.deployments.values()) {
    logger.info(
      { deployment: d.name, model: d.model, engine: d.engineName },
      `deployment ${d.name} (${d.model}) uses the ${d.engineName} engine`,
    );
  }
  if (role === 'all' && [...app.services.deployments.values()].some((d) => d.engineName === 'placeholder')) {
    logger.warn(
      'Some deployments use the placeholder engine: their images show the prompt, not a picture of it. ' +
        'For real images: `npx easel pull sdxl-turbo`, then start with EASEL_MODEL=sdxl-turbo (README, "Real images").',
    );
  }
  if (role === 'api') {
    logger.info({ address, role, keys: app.apiKeys.source }, `easel API node listening on ${address}`);
    context.stdout.write(`\n  easel API node is running: ${url}\n  API keys: those in EASEL_API_KEYS\n\n`);
  } else {
    logger.info({ address, dataDir: config.dataDir, keys: app.apiKeys.source }, `easel listening on ${address}`);
    context.stdout.write(banner(app, config, url));
  }

  stopOnSignals(logger, config.queue.shutdownGraceSeconds, () => app.close());
}

/**
 * listen, or a message that says which setting moves the server when the address is unusable (after
 * `close`, which releases what the server's process holds).
 */
export async function listen(
  server: FastifyInstance,
  host: string,
  port: number,
  close: () => Promise<void>,
): Promise<string> {
  const config = { host, port };
  try {
    return await server.listen({ host, port });
  } catch (error) {
    await close();
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
