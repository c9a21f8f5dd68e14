// `easel models`: what is installed under models.dir, what each folder is, and which deployments use it.
import type { Command } from 'commander';

import { loadConfig } from '../config/index.ts';
import { findAlias, type InstalledModel, listModels, type ModelsReport } from '../models/index.ts';
import { count, formatBytes, formatTable } from './format.ts';
import type { CliContext } from './program.ts';

const STATUS_TEXT: Record<InstalledModel['status'], string> = {
  complete: 'complete',
  'not-pulled': 'installed (not pulled)',
  incomplete: 'incomplete',
  invalid: 'invalid',
};

export function addModelsCommand(program: Command, context: CliContext): void {
  program
    .command('models')
    .description('list the model folders under the models folder and the deployments that use them')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Status: complete (pulled, every file checked), installed (not pulled) (a usable folder no finished pull
vouches for), incomplete (a pull to resume: run easel pull again), invalid (easel cannot load it).
The models folder is EASEL_MODELS_DIR, default <EASEL_DATA_DIR>/models; deployments come from EASEL_CONFIG.
`,
    )
    .action(async (flags: { json?: boolean }) => {
      const config = loadConfig(context.env);
      const deployments = config.deployments.flatMap((d) =>
        d.engine === 'diffusion' ? [{ name: d.name, folder: d.diffusion.folder }] : [],
      );
      const report = await listModels({ modelsDir: config.models.dir, deployments });
      context.stdout.write(flags.json ? `${JSON.stringify(toJson(report), null, 2)}\n` : formatReport(report));
    });
}

/** snake_case, as the marker file and the wire API. */
function toJson(report: ModelsReport) {
  return {
    models_dir: report.modelsDir,
    models: report.models.map((m) => ({
      name: m.name,
      path: m.path,
      status: m.status,
      in_models_dir: m.inModelsDir,
      family: m.family,
      inpainting: m.inpainting,
      native_resolution: m.nativeResolution,
      pipeline_class: m.pipelineClass,
      tiny_autoencoder: m.tinyAutoencoder,
      size_bytes: m.sizeBytes,
      partial_files: m.partialFiles,
      source: m.source && {
        repo: m.source.repo,
        revision: m.source.revision,
        commit: m.source.commit,
        alias: m.source.alias,
        pulled_at: m.source.pulledAt,
      },
      deployments: m.deployments,
      problems: m.problems,
    })),
    missing: report.missing.map((d) => ({ deployment: d.name, folder: d.folder })),
  };
}

function formatReport(report: ModelsReport): string {
  let out = `Models in ${report.modelsDir}\n`;
  if (report.models.length === 0) {
    out += '  none yet: easel pull <repo-or-alias> downloads one (easel pull --list-aliases)\n';
  } else {
    const rows = [['NAME', 'FAMILY', 'INPAINT', 'RES', 'TINY AE', 'SIZE', 'STATUS', 'SOURCE', 'DEPLOYMENTS']];
    for (const m of report.models) {
      rows.push([
        m.inModelsDir ? m.name : m.path,
        m.family ?? '-',
        m.inpainting === null ? '-' : m.inpainting ? 'yes' : 'no',
        m.nativeResolution === null ? '-' : String(m.nativeResolution),
        m.tinyAutoencoder === null ? '-' : m.tinyAutoencoder ? 'yes' : 'no',
        formatBytes(m.sizeBytes),
        STATUS_TEXT[m.status] + (m.partialFiles > 0 ? ` (${count(m.partialFiles, 'partial file')})` : ''),
        m.source ? `${m.source.repo}@${m.source.commit.slice(0, 7)}` : '-',
        m.deployments.join(', ') || '-',
      ]);
    }
    out += formatTable(rows).replace(/^(?=.)/gm, '  ');
    for (const m of report.models.filter((x) => x.status === 'invalid' || x.status === 'incomplete')) {
      const hint =
        m.status === 'incomplete' && m.source ? `; resume with: easel pull ${m.source.repo} --name ${m.name}` : '';
      out += `\n  ${m.name}: ${m.problems.join('; ')}${hint}\n`;
    }
  }
  if (report.missing.length > 0) {
    out += '\nDeployments whose model folder is missing:\n';
    for (const d of report.missing) {
      const name = d.folder.split(/[\\/]/).pop() ?? '';
      const hint = findAlias(name) ? ` (easel pull ${name})` : '';
      out += `  ${d.name}: ${d.folder}${hint}\n`;
    }
  }
  return out;
}
