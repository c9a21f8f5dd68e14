// Where `easel generate` and `easel edit` put their images: <dir>/<slug-of-prompt>-<i>.<ext>, or
// the file named by --out (with -<i> before the extension when there are several).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';

const FILE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

export interface SaveOptions {
  /** A directory, or a file name with an image extension. */
  out: string;
  prompt: string;
  warn(message: string): void;
}

/** Writes the images and answers the paths written, in order. */
export async function saveImages(images: readonly Buffer[], options: SaveOptions): Promise<string[]> {
  const ext = extname(options.out).toLowerCase();
  const asFile = FILE_EXTENSIONS.has(ext);
  const paths = images.map((bytes, i) => {
    if (!asFile) return join(options.out, `${slug(options.prompt)}-${i + 1}.${sniffFormat(bytes)}`);
    return images.length === 1 ? options.out : `${options.out.slice(0, -ext.length)}-${i + 1}${extname(options.out)}`;
  });
  for (const [i, path] of paths.entries()) {
    const format = sniffFormat(images[i]!);
    if (asFile && format !== ext.slice(1).replace('jpg', 'jpeg')) {
      options.warn(`${path} holds a ${format.toUpperCase()} image (choose the format with --format, gpt-image-1)`);
    }
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, images[i]!);
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
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  return 'png';
}
