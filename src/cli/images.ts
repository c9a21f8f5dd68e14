// `easel generate` and `easel edit`: one image request on the Azure routes, through a running
// server or in process (transport.ts), and the images written to files.
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';

import { type Command, InvalidArgumentError, Option } from 'commander';

import { type CliContext, CliError } from './program.ts';
import { checkOverwrite, outputPaths, saveImages } from './save-images.ts';
import { API_VERSION, type ApiAnswer, openTransport, type Transport, type TransportFlags } from './transport.ts';
import { showWaiting } from './waiting.ts';

interface ImageFlags extends TransportFlags {
  deployment: string;
  size?: string;
  quality?: string;
  n?: number;
  seed?: number;
  format?: string;
  out?: string;
  force?: boolean;
  quiet?: boolean;
}

interface GenerateFlags extends ImageFlags {
  style?: string;
}

interface EditFlags extends ImageFlags {
  image: string[];
  mask?: string;
  strength?: number;
}

/** API parameters in wire names; the transport adds response_format where the family has it. */
type Params = Record<string, string | number>;

const SERVER_HELP = `
Without --server (or EASEL_URL) the request goes to the easel server that runs on the configured data
directory (EASEL_DATA_DIR, default ./data), found through the address it records there; when none runs,
it runs in this process on that directory (EASEL_CONFIG, EASEL_MODEL …), as a server would run it.
The key is --key, else EASEL_API_KEY, else (for a server on this machine) EASEL_API_KEYS or the data
directory's key. Output files that exist are not replaced without --force.`;

export function addGenerateCommand(program: Command, context: CliContext): void {
  const command = program
    .command('generate')
    .description('generate images from a prompt and write them to files')
    .argument('<prompt>', 'what to draw');
  imageOptions(command, 'dall-e-3')
    .addOption(new Option('--style <style>', 'vivid or natural (dall-e-3)'))
    .addHelpText(
      'after',
      `${SERVER_HELP}

Examples:
  easel generate "a lighthouse at dawn"
  easel generate "a fox in the snow" --deployment gpt-image-1 --size 1536x1024 --format webp --n 2 --out shots/
  easel generate "a red bicycle" --out bike.png --server http://127.0.0.1:8080 --key $AZURE_OPENAI_API_KEY
`,
    )
    .action(async (prompt: string, flags: GenerateFlags) => {
      const params: Params = { prompt, ...commonParams(flags) };
      if (flags.style) params.style = flags.style;
      await runImageRequest(context, 'generation', flags, params, async (fields) => ({
        headers: { 'content-type': 'application/json' },
        payload: Buffer.from(JSON.stringify(fields)),
      }));
    });
}

export function addEditCommand(program: Command, context: CliContext): void {
  const command = program
    .command('edit')
    .description('edit an image (optionally where a mask is transparent) and write the results to files')
    .argument('<prompt>', 'the change to make, or the whole picture wanted')
    .requiredOption(
      '-i, --image <file>',
      'the image to edit (PNG, JPEG or WebP); repeat for several (gpt-image-1)',
      collect,
    )
    .option('-m, --mask <file>', 'PNG whose transparent pixels (alpha 0) mark where to edit; the size of the image');
  imageOptions(command, 'gpt-image-1')
    .option('--strength <number>', 'how much may change, 0 < strength ≤ 1 (easel extension)', fraction)
    .addHelpText(
      'after',
      `${SERVER_HELP}

Examples:
  easel edit --image beach.png --mask mask.png "add a beach ball in the center"
  easel edit --image photo.jpg "as a watercolor" --strength 0.6 --out watercolor.png
`,
    )
    .action(async (prompt: string, flags: EditFlags) => {
      const params: Params = { prompt, ...commonParams(flags) };
      if (flags.strength !== undefined) params.strength = flags.strength;
      const images = await Promise.all(flags.image.map(readUpload));
      const mask = flags.mask ? await readUpload(flags.mask) : null;
      await runImageRequest(context, 'edit', flags, params, async (fields) => {
        const form = new FormData();
        for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
        for (const image of images) form.append(images.length > 1 ? 'image[]' : 'image', image.blob, image.name);
        if (mask) form.append('mask', mask.blob, mask.name);
        // Response serialises the form as fetch would send it, so inject gets the same bytes.
        const encoded = new Response(form);
        return {
          headers: { 'content-type': encoded.headers.get('content-type')! },
          payload: Buffer.from(await encoded.arrayBuffer()),
        };
      });
    });
}

function imageOptions(command: Command, deployment: string): Command {
  return command
    .option('-d, --deployment <name>', 'the deployment to call', deployment)
    .option('-s, --size <WxH>', 'image size, e.g. 1024x1024, 1792x1024 (what the deployment allows)')
    .option('--quality <quality>', 'standard or hd (dall-e-3); low, medium, high or auto (gpt-image-1)')
    .option('-n, --n <count>', 'how many images', positiveInt)
    .option(
      '--seed <seed>',
      'the same request with the same seed gives the same images (easel extension)',
      nonNegativeInt,
    )
    .addOption(new Option('-f, --format <format>', 'output format (gpt-image-1)').choices(['png', 'jpeg', 'webp']))
    .option('-o, --out <dir-or-file>', 'directory for <prompt-slug>-<i>.<ext>, or a file name (.png, .jpg, .webp)', '.')
    .option('--force', 'replace output files that exist (default: refuse, before anything is generated)')
    .option(
      '--server <url>',
      'a running easel (or Azure) endpoint, e.g. http://127.0.0.1:8080 (default: EASEL_URL, else in process)',
    )
    .option('--key <key>', 'API key for --server (default: EASEL_API_KEY)')
    .option('-q, --quiet', 'no progress on stderr');
}

function commonParams(flags: ImageFlags): Params {
  const params: Params = {};
  if (flags.size) params.size = flags.size;
  if (flags.quality) params.quality = flags.quality;
  if (flags.n !== undefined) params.n = flags.n;
  if (flags.seed !== undefined) params.seed = flags.seed;
  if (flags.format) params.output_format = flags.format;
  return params;
}

type Encode = (fields: Params) => Promise<{ headers: Record<string, string>; payload: Buffer }>;

async function runImageRequest(
  context: CliContext,
  operation: 'generation' | 'edit',
  flags: ImageFlags,
  params: Params,
  encode: Encode,
): Promise<void> {
  // Before anything is generated (minutes on a real model): the files this request will most
  // likely write. saveImages checks again with the formats the answer really has.
  checkOverwrite(
    outputPaths(flags.n ?? 1, expectedFormat(flags.format), { out: flags.out ?? '.', prompt: String(params.prompt) }),
    flags.force,
  );
  const transport = await openTransport(context.env, flags);
  const n = flags.n ?? 1;
  const verb = operation === 'edit' ? 'Editing' : 'Generating';
  const mode = flags.quiet ? 'quiet' : context.stderr.isTTY ? 'spinner' : 'lines';
  const waiting = showWaiting(
    context.stderr,
    `${verb} ${n} image${n === 1 ? '' : 's'} with ${flags.deployment} ${transport.where}`,
    mode,
  );
  let outcome = 'failed';
  try {
    const body = await request(transport, operation, flags.deployment, params, encode);
    const images = await Promise.all(body.data.map((item) => imageBytes(transport, item)));
    outcome = 'done';
    waiting.stop(outcome);
    const save = {
      out: flags.out ?? '.',
      prompt: String(params.prompt),
      force: flags.force,
      warn: (m: string) => context.stderr.write(`easel: ${m}\n`),
    };
    const paths = await saveImages(images, save);
    context.stdout.write(paths.map((p) => `${p}\n`).join(''));
    const revised = body.data.find((item) => item.revised_prompt)?.revised_prompt;
    if (revised) context.stdout.write(`revised prompt: ${revised}\n`);
  } finally {
    if (outcome !== 'done') waiting.stop(outcome);
    await transport.close();
  }
}

function expectedFormat(format: string | undefined): 'png' | 'jpeg' | 'webp' {
  return format === 'jpeg' || format === 'webp' ? format : 'png';
}

interface ImagesBody {
  data: Array<{ b64_json?: string; url?: string; revised_prompt?: string }>;
}

/**
 * POST to the deployment route. response_format b64_json where the family allows it (gpt-image-1
 * answers b64 always and refuses the parameter): when the family is only guessed from the name
 * and the server refuses it, ask again without.
 */
async function request(
  transport: Transport,
  operation: 'generation' | 'edit',
  deployment: string,
  params: Params,
  encode: Encode,
): Promise<ImagesBody> {
  const path = `/openai/deployments/${encodeURIComponent(deployment)}/images/${operation}s?api-version=${API_VERSION}`;
  const send = async (fields: Params) => {
    const { headers, payload } = await encode(fields);
    return transport.post(path, headers, payload);
  };
  let answer =
    transport.familyOf(deployment) === 'gpt-image-1'
      ? await send(params)
      : await send({ ...params, response_format: 'b64_json' });
  if (answer.status === 400 && apiError(answer)?.param === 'response_format') answer = await send(params);
  if (answer.status !== 200) throw failure(answer);
  return JSON.parse(answer.body.toString('utf8')) as ImagesBody;
}

function apiError(answer: ApiAnswer): { code?: string; message?: string; param?: string | null } | undefined {
  try {
    return (
      JSON.parse(answer.body.toString('utf8')) as { error?: { code?: string; message?: string; param?: string | null } }
    ).error;
  } catch {
    return undefined;
  }
}

/** Azure's error envelope as "code: message"; a hint where the fix is on this side. */
function failure(answer: ApiAnswer): CliError {
  const error = apiError(answer);
  const text = error?.message
    ? `${error.code ?? answer.status}: ${error.message}`
    : `HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`;
  const hint = answer.status === 401 ? ' (the key was refused: pass --key or set EASEL_API_KEY)' : '';
  return new CliError(`${text}${hint}`);
}

async function imageBytes(transport: Transport, item: ImagesBody['data'][number]): Promise<Buffer> {
  if (item.b64_json) return Buffer.from(item.b64_json, 'base64');
  if (item.url) return transport.download(item.url);
  throw new CliError('the answer holds an item with neither b64_json nor url');
}

const UPLOAD_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
};

async function readUpload(path: string): Promise<{ name: string; blob: Blob }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const type = UPLOAD_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
  return { name: basename(path), blob: new Blob([new Uint8Array(bytes)], { type }) };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('must be a whole number of at least 1.');
  return Number(value);
}

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number.');
  return Number(value);
}

function fraction(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) throw new InvalidArgumentError('must be a number.');
  return number;
}
