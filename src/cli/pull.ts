// `easel pull`: the command around pullModel (src/models): options, the progress display, Ctrl-C,
// and a summary that says how to use the model.
import type { Command } from 'commander';

import { loadConfig } from '../config/index.ts';
import {
  findAlias,
  hubOptionsFromEnv,
  MODEL_ALIASES,
  type ModelAlias,
  PullError,
  pullModel,
  type PullResult,
  pullTinyAutoencoder,
  TINY_AUTOENCODER_REPOS,
  type TinyPullResult,
} from '../models/index.ts';
import { count, formatBytes, formatDuration } from './format.ts';
import { type CliContext, CliError, EXIT, usageError } from './program.ts';
import { pullReporter } from './progress.ts';

/** owner/name, as the hub spells repository ids (a bare name is an alias or a mistake). */
const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

interface PullFlags {
  revision?: string;
  name?: string;
  force?: boolean;
  quiet?: boolean;
  listAliases?: boolean;
  /** true: the family's default repository; a string: that repository. */
  tinyAutoencoder?: boolean | string;
}

export function addPullCommand(program: Command, context: CliContext): void {
  program
    .command('pull')
    .description('download an ONNX Stable Diffusion model from the Hugging Face hub into the models folder')
    .argument('[repo-or-alias]', 'a repository id (owner/name) or an alias (see --list-aliases)')
    .option('-r, --revision <revision>', "branch, tag or commit (default: the alias's, else main)")
    .option('-n, --name <name>', "folder name under the models folder (default: the alias, else the repository's name)")
    .option('-f, --force', 'delete the folder first and download everything again')
    .option('-q, --quiet', 'no progress and no summary; errors only')
    .option('--list-aliases', 'list the model aliases and exit')
    .option(
      '--tiny-autoencoder [repo]',
      `also pull the tiny autoencoder (TAESD) into vae_tiny_decoder/ and vae_tiny_encoder/ (default ${TINY_AUTOENCODER_REPOS.sd2} for SD 1.x/2.x and LCM)`,
    )
    .addHelpText(
      'after',
      `
Only the ONNX diffusers layout is downloaded (model_index.json, scheduler/, tokenizer*/, and model.onnx,
external data and config.json of text_encoder*, unet, vae_decoder, vae_encoder, vae_tiny_*); PyTorch weights are skipped.
--tiny-autoencoder adds TAESD from its own repository (its vae_decoder/ and vae_encoder/ become the model
folder's vae_tiny_decoder/ and vae_tiny_encoder/), for "autoencoder": "tiny" and real streamed previews.
An interrupted pull (Ctrl-C, a dropped connection) keeps its partial files: run the same command to resume.
Without network: copy a model folder in that layout into the models folder (EASEL_MODELS_DIR) and
start with EASEL_MODEL=<folder name>, or set HF_ENDPOINT to a mirror of the hub.

Environment:
  HF_ENDPOINT        the hub (default https://huggingface.co)
  HF_TOKEN           a Hugging Face access token, for gated or private repositories
  EASEL_MODELS_DIR   where model folders go (default <EASEL_DATA_DIR>/models)

Examples:
  easel pull sdxl-turbo
  easel pull aislamov/stable-diffusion-2-1-base-onnx --revision cpu --name sd21
  easel pull lcm-dreamshaper-v7 --tiny-autoencoder
`,
    )
    .action(async (source: string | undefined, flags: PullFlags, command: Command) => {
      if (flags.listAliases) {
        context.stdout.write(formatAliases(MODEL_ALIASES));
        return;
      }
      if (!source) usageError(command, "missing argument 'repo-or-alias' (or use --list-aliases)");
      if (!findAlias(source) && !REPO_ID.test(source)) {
        usageError(
          command,
          `${JSON.stringify(source)} is neither a model alias (${MODEL_ALIASES.map((a) => a.name).join(', ')}) ` +
            `nor a Hugging Face repository id owner/name (e.g. stabilityai/sdxl-turbo)`,
        );
      }
      await runPull(context, source, flags);
    });
}

async function runPull(context: CliContext, source: string, flags: PullFlags): Promise<void> {
  const config = loadConfig(context.env);
  const reporter = pullReporter(context.stderr, flags.quiet ? 'quiet' : context.stderr.isTTY ? 'bars' : 'lines');
  const abort = new AbortController();
  const onSigint = () => {
    // The first Ctrl-C stops the downloads cleanly (partial files stay); a second one does not wait.
    if (abort.signal.aborted) process.exit(EXIT.interrupted);
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  const started = Date.now();
  let result: PullResult;
  let tiny: TinyPullResult | undefined;
  try {
    result = await pullModel({
      source,
      revision: flags.revision,
      name: flags.name,
      force: flags.force,
      modelsDir: config.models.dir,
      hub: hubOptionsFromEnv(context.env),
      onEvent: (event) => reporter.onEvent(event),
      signal: abort.signal,
    });
    if (flags.tinyAutoencoder) {
      const repo = typeof flags.tinyAutoencoder === 'string' ? flags.tinyAutoencoder : undefined;
      tiny = await pullTinyAutoencoder({
        folder: result.folder,
        repo,
        hub: hubOptionsFromEnv(context.env),
        signal: abort.signal,
      });
    }
  } catch (error) {
    if (!(error instanceof PullError)) throw error;
    if (error.code === 'interrupted') {
      throw new CliError(error.message, EXIT.interrupted);
    }
    if (error.code === 'bad-request') throw new CliError(error.message, EXIT.usage);
    if (error.code === 'network')
      throw new CliError(`${error.message}\n${offlineHint(config.models.dir, source, flags.name)}`);
    const problems = error.code === 'invalid-model' ? error.problems : [];
    throw new CliError(
      problems.length > 0
        ? `${error.message.split(':')[0]}:\n${problems.map((p) => `  - ${p}`).join('\n')}`
        : error.message,
    );
  } finally {
    reporter.stop();
    process.off('SIGINT', onSigint);
  }
  if (!flags.quiet) context.stdout.write(summary(result, (Date.now() - started) / 1000, tiny));
}

/** What to do when the hub cannot be reached: a folder copied by hand works as well as a pull. */
function offlineHint(modelsDir: string, source: string, name: string | undefined): string {
  const folder = name ?? findAlias(source)?.name ?? source.split('/').pop()!;
  return (
    `Next steps:\n` +
    `  - without network: copy a model folder (the diffusers ONNX layout: model_index.json, unet/model.onnx …) to ${modelsDir}/${folder}\n` +
    `    and start with EASEL_MODEL=${folder} (\`easel models\` checks it)\n` +
    `  - through a mirror of the hub: set HF_ENDPOINT, e.g. HF_ENDPOINT=https://hf-mirror.example easel pull ${source}\n` +
    `  - then run the same command again: files already downloaded are kept`
  );
}

function summary(result: PullResult, seconds: number, tiny: TinyPullResult | undefined): string {
  const { marker, model, alias } = result;
  const size = marker.files.reduce((sum, f) => sum + f.size, 0);
  const reused = [
    result.alreadyThere > 0 ? `${result.alreadyThere} already there` : '',
    result.resumed > 0 ? `${result.resumed} resumed` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const deployment = {
    name: result.name,
    model: 'dall-e-3',
    engine: 'diffusion',
    diffusion: { folder: result.name, ...(alias?.settings ?? {}) },
  };
  return (
    `Pulled ${marker.repo}@${marker.revision} (commit ${marker.commit.slice(0, 10)}) into ${result.folder}\n` +
    `  ${model.family}${model.inpainting ? ' inpainting' : ''}, ${model.nativeResolution}×${model.nativeResolution}, ` +
    `${count(marker.files.length, 'file')}, ${formatBytes(size)}${reused ? ` (${reused})` : ''}; ` +
    `${formatBytes(result.receivedBytes)} downloaded in ${formatDuration(seconds)}\n` +
    (alias ? `  Needs: ${alias.needs}\n` : '') +
    (tiny
      ? `  Tiny autoencoder: ${tiny.repo}@${tiny.revision} (commit ${tiny.commit.slice(0, 10)}), ${count(tiny.files.length, 'file')} in vae_tiny_decoder/ and vae_tiny_encoder/; ` +
        `choose it with "autoencoder": "tiny" in the deployment's diffusion settings (or EASEL_AUTOENCODER=tiny)\n`
      : '') +
    `\nUse it for every placeholder deployment:\n  EASEL_MODEL=${result.name} npm start\n` +
    `or as a deployment in the config file (EASEL_CONFIG):\n  ${JSON.stringify(deployment)}\n`
  );
}

function formatAliases(aliases: readonly ModelAlias[]): string {
  const blocks = aliases.map((a) => {
    const settings = Object.entries(a.settings)
      .map(([k, v]) => `"${k}": ${v}`)
      .join(', ');
    return (
      `${a.name}  →  ${a.repo}${a.revision === 'main' ? '' : ` (revision ${a.revision})`}\n` +
      `    ${a.description}\n    Needs: ${a.needs}\n    Deployment settings: ${settings}\n`
    );
  });
  return `Aliases for easel pull:\n\n${blocks.join('\n')}`;
}
