// `easel pull … --tiny-autoencoder`: the tiny autoencoder (TAESD for SD 1.x/2.x and LCM, TAESDXL for
// SDXL) from its own hub repository into a model folder's vae_tiny_decoder/ and vae_tiny_encoder/.
// The public ONNX exports of TAESD use the optimum layout of a whole autoencoder (vae_decoder/,
// vae_encoder/), so their files are renamed on the way in. Files are fetched, resumed and checked as
// a model pull's are; a small marker beside the model's own records where they came from.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import {
  inspectModelFolder,
  type ModelFamily,
  ModelFolderError,
  TINY_DECODER_FILE,
} from '../engines/diffusion/model/index.ts';
import { downloadFile, verifyExisting } from './download.ts';
import { diskError, PullError } from './errors.ts';
import { Hub, type HubOptions } from './hub.ts';
import { writeJsonAtomically } from './marker.ts';

/** The marker of a tiny autoencoder pull, in the model folder. */
export const TINY_MARKER_FILE = '.easel-tiny-autoencoder.json';

/**
 * The default ONNX export per model family. deinferno/taesd-onnx is madebyollin/taesd (diffusers
 * AutoencoderTiny) exported in the optimum layout. SDXL needs TAESDXL, for which no ONNX export is
 * known well enough to be a default: name one with --tiny-autoencoder <repo>.
 */
export const TINY_AUTOENCODER_REPOS: Readonly<Partial<Record<ModelFamily, string>>> = {
  sd1: 'deinferno/taesd-onnx',
  sd2: 'deinferno/taesd-onnx',
  lcm: 'deinferno/taesd-onnx',
};

/** Repository folder → model folder. A repository already in easel's layout keeps its names. */
const RENAME: Record<string, string> = {
  vae_decoder: 'vae_tiny_decoder',
  vae_encoder: 'vae_tiny_encoder',
  vae_tiny_decoder: 'vae_tiny_decoder',
  vae_tiny_encoder: 'vae_tiny_encoder',
};
const PART_FILE = /^(model\.onnx|[^/]*\.onnx_data|[^/]*\.onnx\.data|weights\.pb|config\.json)$/;

export interface TinyPullOptions {
  /** The model folder (already pulled) to add the tiny autoencoder to. */
  folder: string;
  /** A repository id; default from the folder's family (TINY_AUTOENCODER_REPOS). */
  repo?: string;
  revision?: string;
  hub: HubOptions;
  signal?: AbortSignal;
}

export interface TinyPullResult {
  repo: string;
  revision: string;
  commit: string;
  /** Paths written, relative to the model folder. */
  files: string[];
  alreadyThere: number;
}

export async function pullTinyAutoencoder(options: TinyPullOptions): Promise<TinyPullResult> {
  const signal = options.signal ?? new AbortController().signal;
  const family = await familyOf(options.folder);
  const repo = options.repo ?? TINY_AUTOENCODER_REPOS[family];
  if (!repo) {
    throw new PullError(
      'bad-request',
      `no default tiny autoencoder for a ${family} model: name an ONNX export of TAESDXL (madebyollin/taesdxl) with --tiny-autoencoder <owner/name>`,
    );
  }
  const revision = options.revision ?? 'main';
  const hub = new Hub(options.hub);
  const listing = await hub.listFiles(repo, revision, signal);
  const wanted = listing.files.flatMap((file) => {
    const [dir, name, ...rest] = file.path.split('/');
    const target = dir !== undefined ? RENAME[dir] : undefined;
    return target && name !== undefined && rest.length === 0 && PART_FILE.test(name)
      ? [{ file, dest: `${target}/${name}` }]
      : [];
  });
  if (!wanted.some((w) => w.dest === TINY_DECODER_FILE)) {
    throw new PullError(
      'not-onnx',
      `${repo}@${revision} is not an ONNX tiny autoencoder export: it has no vae_decoder/model.onnx`,
    );
  }
  const settings = { hub, repo, commit: listing.commit, signal, retries: 5, retryDelayMs: 1000, idleTimeoutMs: 60_000 };
  const files: Array<{ path: string; size: number; sha256: string }> = [];
  let alreadyThere = 0;
  // A handful of small files (about 5 MB each part): one at a time.
  for (const { file, dest } of wanted) {
    const path = join(options.folder, ...dest.split('/'));
    await mkdir(join(path, '..'), { recursive: true }).catch((error) => Promise.reject(diskError(path, error)));
    let sha256 = await verifyExisting(path, file, signal);
    if (sha256) alreadyThere++;
    else sha256 = (await downloadFile(file, path, settings, () => {})).sha256;
    files.push({ path: dest, size: file.size, sha256 });
  }
  await writeJsonAtomically(options.folder, TINY_MARKER_FILE, {
    repo,
    revision,
    commit: listing.commit,
    endpoint: options.hub.endpoint,
    pulled_at: new Date().toISOString(),
    files,
  });
  return { repo, revision, commit: listing.commit, files: files.map((f) => f.path), alreadyThere };
}

async function familyOf(folder: string): Promise<ModelFamily> {
  try {
    return (await inspectModelFolder(folder)).family;
  } catch (error) {
    if (!(error instanceof ModelFolderError)) throw error;
    throw new PullError(
      'invalid-model',
      `the tiny autoencoder goes into a usable model folder, and ${folder} is not one: ${error.problems.join('; ')}`,
      [...error.problems],
    );
  }
}
