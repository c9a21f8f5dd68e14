import type { Command } from 'commander';

import { createWorker, DEFAULT_WORKER_PORT, type Worker, type WorkerOptions } from '../app.ts';
import { loadConfig } from '../config/index.ts';
import { UnknownDeploymentError } from '../roles/worker.ts';
import { clientUrl } from './address.ts';
import { createLogger, logFormat } from './logger.ts';
import { type CliContext, usageError } from './program.ts';
import { listen, SCALE_OUT_HELP } from './serve.ts';
import { stopOnSignals, unreachableAtStart } from './shutdown.ts';

export function addWorkerCommand(program: Command, context: CliContext): void {
  const command = program
    .command('worker')
    .description('start a generation worker of a scale-out deployment (loads models, takes jobs from Redis)')
    .option('--deployments <names>', 'serve only these configured deployments (comma-separated; default: all)')
    .addHelpText(
      'after',
      `\n${SCALE_OUT_HELP}.\n` +
        'The deployments come from the same settings as the API nodes (EASEL_CONFIG, EASEL_MODEL, EASEL_MODELS_DIR).\n' +
        `GET /healthz, /readyz and /metrics on HOST and PORT (default ${DEFAULT_WORKER_PORT}).\n` +
        'Exit codes: 78 invalid or missing settings, 69 a service cannot be reached.\n',
    )
    .action(async (options: { deployments?: string }) => {
      const deployments = options.deployments
        ?.split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '');
      try {
        await worker(context, { deployments });
      } catch (error) {
        if (error instanceof UnknownDeploymentError) usageError(command, `--deployments: ${error.message}`);
        throw error;
      }
      context.keepRunning = true;
    });
}

/**
 * `easel worker`: load the configuration, start the worker and its HTTP server, stop cleanly on
 * SIGINT/SIGTERM. Its port is PORT when set, else 8081 (a config file's `port` is the API's).
 */
export async function worker(
  context: Pick<CliContext, 'env' | 'stdout'>,
  options: Pick<WorkerOptions, 'deployments' | 'engine'> = {},
): Promise<void> {
  const config = loadConfig(context.env);
  const logger = createLogger(config.logLevel, logFormat(context.env, context.stdout), context.stdout);
  const port = context.env.PORT ? config.port : DEFAULT_WORKER_PORT;
  let node: Worker;
  try {
    node = await createWorker(config, { logger, port, ...options });
  } catch (error) {
    throw unreachableAtStart(error);
  }
  const address = await listen(node.server, config.host, port, () => node.close());
  const url = clientUrl(config.host, (node.server.server.address() as { port: number }).port);
  logger.info({ address, worker: node.id, deployments: node.deployments }, `easel worker listening on ${address}`);
  context.stdout.write(
    `\n  easel worker ${node.id} takes jobs of ${node.deployments.join(', ')}\n  Health: ${url}/readyz  Metrics: ${url}/metrics\n\n`,
  );
  stopOnSignals(logger, config.queue.shutdownGraceSeconds, () => node.close());
}
