// Which files of a hub repository make up the ONNX diffusers layout (docs/diffusion.md, "Model folder layout").
// Repositories such as stabilityai/sdxl-turbo keep the ONNX export beside PyTorch weights and fp16
// variants; only the files the ONNX engine reads are downloaded.
import { PullError } from './errors.ts';

// vae_tiny_*: a tiny autoencoder (TAESD) that a repository ships beside the model.
const ONNX_PARTS = [
  'text_encoder',
  'text_encoder_2',
  'unet',
  'vae_decoder',
  'vae_encoder',
  'vae_tiny_decoder',
  'vae_tiny_encoder',
];

const LAYOUT: readonly RegExp[] = [
  /^model_index\.json$/,
  /^scheduler\/[^/]+\.json$/,
  /^tokenizer[^/]*\/[^/]+\.(json|txt)$/,
  // model.onnx, its external data under any of the exporters' names, and optimum's config.json.
  new RegExp(
    `^(${ONNX_PARTS.join('|')})/(model\\.onnx|[^/]*\\.onnx_data|weights\\.pb|[^/]*\\.onnx\\.data|config\\.json)$`,
  ),
];

/** True for a path (relative, '/'-separated) the ONNX layout needs. */
export function isLayoutFile(path: string): boolean {
  if (path.split('/').some((part) => part === '' || part === '.' || part === '..')) return false;
  return LAYOUT.some((re) => re.test(path));
}

/** The layout files of a listing, and the rest; refuses a repository that holds no ONNX export. */
export function selectLayoutFiles<T extends { path: string }>(
  repo: string,
  revision: string,
  files: readonly T[],
): { keep: T[]; skipped: T[] } {
  const keep = files.filter((f) => isLayoutFile(f.path));
  const skipped = files.filter((f) => !isLayoutFile(f.path));
  const missing = ['model_index.json', 'unet/model.onnx'].filter((p) => !keep.some((f) => f.path === p));
  if (missing.length > 0) {
    const elsewhere = files
      .filter((f) => f.path.endsWith('/unet/model.onnx'))
      .map((f) => f.path.slice(0, -'/unet/model.onnx'.length));
    const hint =
      elsewhere.length > 0
        ? ` It has an ONNX export in a subfolder (${elsewhere.join(', ')}), which easel does not pull.`
        : files.some((f) => /\.(safetensors|bin|ckpt)$/.test(f.path))
          ? ' It looks like a PyTorch repository: pull an ONNX export of it instead.'
          : '';
    throw new PullError(
      'not-onnx',
      `${repo}@${revision} is not an ONNX diffusers export: it has no ${missing.join(' and no ')}.${hint}`,
    );
  }
  return { keep, skipped };
}
