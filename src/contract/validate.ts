import { errors } from './errors.ts';
import { type Family, knownParams, type ParamSpec, type ParamTable } from './families.ts';
import type { ImageRequest, OutputFormat, RawImage } from './request.ts';

export type Operation = 'generation' | 'edit';
/** The parameter tables: an ImageRequest's operation, or DALL-E 2's asynchronous submit. */
export type ParamOperation = Operation | 'submit';
/** JSON bodies carry typed values; multipart bodies carry every scalar as a string. */
export type BodySource = 'json' | 'multipart';
export type ParamValue = string | number | boolean;

/**
 * Check every field of a request body against the family's table: unknown names, names of another
 * family's parameter, types, enums, ranges, required fields. Returns the values with defaults applied.
 */
export function validateParams(
  family: Family,
  operation: ParamOperation,
  body: Record<string, unknown>,
  source: BodySource,
): Record<string, ParamValue> {
  const table: ParamTable | null = family[operation];
  if (!table)
    throw errors.operationNotSupported(
      family.id,
      `images/${operation === 'submit' ? 'generations:submit' : `${operation}s`}`,
    );
  const known = knownParams(operation);
  const values: Record<string, ParamValue> = {};

  for (const [name, raw] of Object.entries(body)) {
    if (!known.has(name)) throw errors.unknownParameter(name);
    const spec = table[name];
    if (!spec) {
      // The OpenAI SDK sends `response_format` only when asked to; gpt-image-1 always answers b64_json.
      throw errors.unsupportedParameter(name, family.id);
    }
    if (raw === null || raw === undefined) continue;
    values[name] = coerce(name, spec, raw, source);
  }

  for (const [name, spec] of Object.entries(table)) {
    if (values[name] !== undefined) continue;
    if (spec.kind === 'string' && spec.required) throw errors.missingParameter(name);
    if ('default' in spec && spec.default !== undefined) values[name] = spec.default;
  }
  return values;
}

function coerce(name: string, spec: ParamSpec, raw: unknown, source: BodySource): ParamValue {
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string') throw errors.invalidParameter(name, `'${name}' must be a string.`);
      if (spec.required && raw.trim().length === 0) throw errors.invalidParameter(name, `'${name}' must not be empty.`);
      if (spec.maxLength !== undefined && [...raw].length > spec.maxLength) {
        throw errors.invalidParameter(name, `'${name}' is too long: the maximum is ${spec.maxLength} characters.`);
      }
      return raw;
    }
    case 'enum': {
      if (typeof raw !== 'string' || !spec.values.includes(raw)) {
        throw errors.invalidParameter(name, `'${name}' must be one of ${spec.values.map((v) => `'${v}'`).join(', ')}.`);
      }
      return raw;
    }
    case 'int': {
      const value = source === 'multipart' && typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw errors.invalidParameter(name, `'${name}' must be an integer.`);
      }
      if (value < spec.min || value > spec.max) {
        throw errors.invalidParameter(
          name,
          spec.min === spec.max
            ? `'${name}' must be ${spec.min} for this model.`
            : `'${name}' must be between ${spec.min} and ${spec.max}.`,
        );
      }
      return value;
    }
    case 'number': {
      const value =
        source === 'multipart' && typeof raw === 'string' && /^-?(\d+\.?\d*|\.\d+)$/.test(raw.trim())
          ? Number(raw)
          : raw;
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw errors.invalidParameter(name, `'${name}' must be a number.`);
      if ((spec.exclusiveMin ? value <= spec.min : value < spec.min) || value > spec.max) {
        const low = spec.exclusiveMin ? `greater than ${spec.min}` : `at least ${spec.min}`;
        throw errors.invalidParameter(name, `'${name}' must be ${low} and at most ${spec.max}.`);
      }
      return value;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (source === 'multipart' && (raw === 'true' || raw === 'false')) return raw === 'true';
      throw errors.invalidParameter(name, `'${name}' must be a boolean.`);
    }
  }
}

/**
 * What an edit's uploads contribute to the request. Only their sizes are known when the request is
 * validated: the pixels are decoded when the job runs (`images`/`mask` empty until then).
 */
export interface EditInputs {
  images?: RawImage[];
  mask?: RawImage | null;
  /** How many images were sent. */
  inputCount: number;
  /** Size of the first input before resizing (for `size: auto` on edits). */
  inputWidth: number;
  inputHeight: number;
}

/**
 * Resolve the output size. `auto` means 1024×1024 for generations and the input's own size for
 * edits, so that unmasked pixels come back unchanged (docs/deviations.md).
 */
export function resolveSize(size: string | undefined, operation: Operation, input?: { width: number; height: number }) {
  if (size === undefined || size === 'auto') {
    if (operation === 'edit' && input) return { width: input.width, height: input.height };
    return { width: 1024, height: 1024 };
  }
  const [w, h] = size.split('x').map(Number);
  return { width: w!, height: h! };
}

/** Cross-field rules, then the normalized request. */
export function toImageRequest(
  family: Family,
  operation: Operation,
  deployment: string,
  values: Record<string, ParamValue>,
  edit?: EditInputs,
): ImageRequest {
  const outputFormat = (values.output_format as OutputFormat | undefined) ?? 'png';
  const background = values.background as string | undefined;
  if (background === 'transparent' && outputFormat === 'jpeg') {
    throw errors.invalidParameter('background', "A transparent background needs output_format 'png' or 'webp'.");
  }
  if (values.output_compression !== undefined && values.output_compression !== 100 && outputFormat === 'png') {
    throw errors.invalidParameter(
      'output_compression',
      "'output_compression' applies only to output_format 'jpeg' or 'webp'.",
    );
  }
  const { width, height } = resolveSize(
    values.size as string | undefined,
    operation,
    edit ? { width: edit.inputWidth, height: edit.inputHeight } : undefined,
  );
  checkEncodable(outputFormat, width, height, values.output_format !== undefined);
  const prompt = values.prompt as string;
  const request: Omit<ImageRequest, 'seed'> = {
    operation,
    deployment,
    family: family.id,
    prompt,
    n: values.n as number,
    width,
    height,
    quality: normalizeQuality(family, values.quality as string | undefined),
    style: (values.style as 'vivid' | 'natural' | undefined) ?? null,
    transparentBackground: background === 'transparent',
    outputFormat,
    outputCompression: (values.output_compression as number | undefined) ?? 100,
    responseFormat: family.alwaysBase64 ? 'b64_json' : ((values.response_format as 'url' | 'b64_json') ?? 'url'),
    user: (values.user as string | undefined) ?? null,
    moderation: (values.moderation as 'low' | 'auto' | undefined) ?? 'auto',
    stream: (values.stream as boolean | undefined) ?? false,
    partialImages: (values.partial_images as number | undefined) ?? 0,
    images: edit?.images ?? [],
    mask: edit?.mask ?? null,
    ...(edit ? { inputCount: edit.inputCount } : {}),
    strength: (values.strength as number | undefined) ?? null,
  };
  const seed = (values.seed as number | undefined) ?? deriveSeed(request);
  return { ...request, seed };
}

/**
 * The largest side each encoder can write. WebP stores 14-bit dimensions (16383; the WebP container
 * spec, developers.google.com/speed/webp/docs/riff_container); libjpeg refuses sides over its
 * JPEG_MAX_DIMENSION, 65500; PNG stores 31-bit dimensions (PNG spec, IHDR). Checked when the request
 * is validated, so an edit whose `size: auto` output no encoder can hold is a 400, not a failed job.
 */
export const MAX_OUTPUT_SIDE: Readonly<Record<OutputFormat, number>> = { png: 2 ** 31 - 1, jpeg: 65500, webp: 16383 };

function checkEncodable(format: OutputFormat, width: number, height: number, formatWasSent: boolean): void {
  const max = MAX_OUTPUT_SIDE[format];
  if (width <= max && height <= max) return;
  const fits = (['png', 'webp', 'jpeg'] as const).filter(
    (f) => width <= MAX_OUTPUT_SIDE[f] && height <= MAX_OUTPUT_SIDE[f],
  );
  const message =
    `The output would be ${width}x${height} pixels, but ${format.toUpperCase()} holds at most ${max} pixels per side. ` +
    (fits.length > 0
      ? `Choose output_format ${fits.map((f) => `'${f}'`).join(' or ')}, or a smaller size.`
      : 'Choose a smaller size.');
  // Without an explicit output_format, the size (an edit's input, for `size: auto`) is what to change.
  throw errors.invalidParameter(formatWasSent ? 'output_format' : 'size', message);
}

/** For gpt-image-1, `auto` (and the edit-only `standard`) mean the Azure default, `high`. */
function normalizeQuality(family: Family, quality: string | undefined): string | null {
  if (quality === undefined) return null;
  if (family.id === 'gpt-image-1' && (quality === 'auto' || quality === 'standard')) return 'high';
  return quality;
}

/**
 * A request without `seed` still gets the same images every time (FNV-1a over what shapes the
 * output), which is what a local test double should do; pass `seed` to vary them.
 */
export function deriveSeed(request: Omit<ImageRequest, 'seed'>): number {
  const key = JSON.stringify([
    request.family,
    request.prompt,
    request.width,
    request.height,
    request.quality,
    request.style,
  ]);
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
