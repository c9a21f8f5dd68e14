// `easel models`: what is in models.dir (and in the folders deployments name), whether each folder is
// a complete pull, what the engine would make of it, and which deployments use it.
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

import { inspectModelFolder, type ModelFamily, ModelFolderError } from '../engines/diffusion/model/index.ts';
import { INCOMPLETE_SUFFIX } from './download.ts';
import { type ModelMarker, readMarker, readPullNote } from './marker.ts';

/**
 * complete: a finished pull, and the engine accepts the layout.
 * not-pulled: the engine accepts the layout, but no finished pull vouches for it (copied by hand, or a
 *   pull of a newer commit is under way or was interrupted).
 * incomplete: a pull that has not finished (partial files or a pull note) and the layout is not usable yet;
 *   pulling again resumes it.
 * invalid: the engine would refuse it; `problems` says why.
 */
export type InstalledStatus = 'complete' | 'incomplete' | 'not-pulled' | 'invalid';

export interface InstalledModel {
  name: string;
  path: string;
  status: InstalledStatus;
  /** False for a folder outside models.dir that a deployment names. */
  inModelsDir: boolean;
  family: ModelFamily | null;
  inpainting: boolean | null;
  nativeResolution: number | null;
  pipelineClass: string | null;
  /**
   * The folder has vae_tiny_decoder/model.onnx (diffusion.autoencoder "tiny", real previews); null when it is not
   * usable.
   */
  tinyAutoencoder: boolean | null;
  /** Bytes of every file under the folder, partial files included. */
  sizeBytes: number;
  /** Files still ending in .incomplete. */
  partialFiles: number;
  /** What inspectModelFolder objects to. */
  problems: string[];
  /** The completion marker of a pull; for an incomplete pull, the repository it is pulling. */
  source: { repo: string; revision: string; commit: string; alias: string | null; pulledAt: string | null } | null;
  /** Names of the deployments whose folder this is. */
  deployments: string[];
}

export interface DeploymentFolder {
  name: string;
  /** Absolute, as config.deployments[i].diffusion.folder. */
  folder: string;
}

export interface ModelsReport {
  modelsDir: string;
  models: InstalledModel[];
  /** Deployments whose folder does not exist. */
  missing: DeploymentFolder[];
}

export async function listModels(options: {
  modelsDir: string;
  deployments: readonly DeploymentFolder[];
}): Promise<ModelsReport> {
  const entries = await readdir(options.modelsDir, { withFileTypes: true }).catch(() => []);
  const folders = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => join(options.modelsDir, e.name));
  const byKey = new Map<string, InstalledModel>();
  for (const folder of folders.sort()) byKey.set(await folderKey(folder), await describeFolder(folder, true));

  const missing: DeploymentFolder[] = [];
  for (const deployment of options.deployments) {
    if (!(await isDirectory(deployment.folder))) {
      missing.push(deployment);
      continue;
    }
    const key = await folderKey(deployment.folder);
    let model = byKey.get(key);
    if (!model) {
      model = await describeFolder(resolve(deployment.folder), false);
      byKey.set(key, model);
    }
    model.deployments.push(deployment.name);
  }
  return { modelsDir: options.modelsDir, models: [...byKey.values()], missing };
}

async function describeFolder(path: string, inModelsDir: boolean): Promise<InstalledModel> {
  const { sizeBytes, partialFiles } = await measure(path);
  const marker = await readMarker(path);
  const note = await readPullNote(path);
  const model: InstalledModel = {
    name: basename(path),
    path,
    status: 'invalid',
    inModelsDir,
    family: null,
    inpainting: null,
    nativeResolution: null,
    pipelineClass: null,
    tinyAutoencoder: null,
    sizeBytes,
    partialFiles,
    problems: [],
    source: sourceOf(note ? undefined : marker, note),
    deployments: [],
  };
  try {
    const folder = await inspectModelFolder(path);
    Object.assign(model, {
      family: folder.family,
      inpainting: folder.inpainting,
      nativeResolution: folder.nativeResolution,
      pipelineClass: folder.pipelineClass,
      tinyAutoencoder: folder.parts.tinyDecoder !== undefined,
    });
  } catch (error) {
    if (!(error instanceof ModelFolderError)) throw error;
    model.problems = [...error.problems];
  }
  const valid = model.problems.length === 0;
  const pulling = note !== undefined || partialFiles > 0;
  // A folder the engine accepts is usable whatever its history; only a finished pull is "complete".
  model.status = valid ? (marker && !pulling ? 'complete' : 'not-pulled') : pulling ? 'incomplete' : 'invalid';
  return model;
}

function sourceOf(
  marker: ModelMarker | undefined,
  note: { repo: string; revision: string; commit: string } | undefined,
): InstalledModel['source'] {
  if (marker)
    return {
      repo: marker.repo,
      revision: marker.revision,
      commit: marker.commit,
      alias: marker.alias,
      pulledAt: marker.pulled_at,
    };
  if (note) return { repo: note.repo, revision: note.revision, commit: note.commit, alias: null, pulledAt: null };
  return null;
}

/** Total bytes and partial files under `dir`, easel's own small files included. */
async function measure(dir: string): Promise<{ sizeBytes: number; partialFiles: number }> {
  let sizeBytes = 0;
  let partialFiles = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    if (entry.name.endsWith(INCOMPLETE_SUFFIX)) partialFiles++;
    sizeBytes += (await stat(join(entry.parentPath ?? entry.path, entry.name)).catch(() => undefined))?.size ?? 0;
  }
  return { sizeBytes, partialFiles };
}

/** Deployments name folders by path; the same folder through a symlink is the same model. */
async function folderKey(path: string): Promise<string> {
  return realpath(path).catch(() => resolve(path));
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
