// Where `easel generate` and `easel edit` put their images: <dir>/<slug-of-prompt>-<i>.<ext>, or
// the file named by --out (with -<i> before the extension when there are several). An existing
// file is never replaced without --force: the same command run twice must not lose the first
// images silently, and a predictable name (rather than a fresh "-2" suffix) keeps scripts simple.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';

import { CliError } from './program.ts';

const FILE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

export interface SaveOptions {
  /** A directory, or a file name with an image extension. */
  out: string;
  prompt: string;
  /** Replace files that exist (default: refuse, writing nothing). */
  force?: boolean;
  warn(message: string): void;
}

/** The files `count` images of `format` will be written to. */
export function outputPaths(
  count: number,
  format: 'png' | 'jpeg' | 'webp',
  options: Pick<SaveOptions, 'out' | 'prompt'>,
): string[] {
  const ext = extname(options.out).toLowerCase();
  return Array.from({ length: count }, (_, i) => {
    if (!FILE_EXTENSIONS.has(ext)) return join(options.out, `${slug(options.prompt)}-${i + 1}.${format}`);
    return count === 1 ? options.out : `${options.out.slice(0, -ext.length)}-${i + 1}${extname(options.out)}`;
  });
}

/** Refuses (OutputExistsError) when any of `paths` exists, unless `force`. */
export function checkOverwrite(paths: readonly string[], force = false): void {
  if (force) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) throw new OutputExistsError(existing);
}

export class OutputExistsError extends CliError {
  constructor(readonly paths: string[]) {
    super(
      `${paths.join(', ')} already ${paths.length === 1 ? 'exists' : 'exist'}: pass --force to replace, or choose another --out`,
    );
    this.name = 'OutputExistsError';
  }
}

/**
 * Writes the images and answers the paths written, in order; writes none when one would replace a file (unless force).
 */
export async function saveImages(images: readonly Buffer[], options: SaveOptions): Promise<string[]> {
  const ext = extname(options.out).toLowerCase();
  const asFile = FILE_EXTENSIONS.has(ext);
  const paths = images.map((bytes, i) => outputPaths(images.length, sniffFormat(bytes), options)[i]!);
  checkOverwrite(paths, options.force);
  for (const [i, path] of paths.entries()) {
    const format = sniffFormat(images[i]!);
    if (asFile && format !== ext.slice(1).replace('jpg', 'jpeg')) {
      options.warn(`${path} holds a ${format.toUpperCase()} image (choose the format with --format, gpt-image-1)`);
    }
    await mkdir(dirname(path), { recursive: true });
    // wx: a file that appeared since the check is not replaced either.
    await writeFile(path, images[i]!, { flag: options.force ? 'w' : 'wx' }).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? new OutputExistsError([path]) : error;
    });
  }
  return paths;
}

/** "A red bicycle, leaning on a wall!" → "a-red-bicycle-leaning-on-a-wall". */
export function slug(prompt: string): string {
  const words = prompt
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const cut = words.length > 48 ? words.slice(0, 48).replace(/-[^-]*$/, '') : words;
  return cut || 'image';
}

/** The file extension for the bytes' format: the answer says what it is, not the request. */
export function sniffFormat(bytes: Buffer): 'png' | 'jpeg' | 'webp' {
  if (bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP')
    return 'webp';
  return 'png';
}
