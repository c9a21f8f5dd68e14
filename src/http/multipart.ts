import type { FastifyRequest } from 'fastify';

import { errors } from '../contract/errors.ts';
import { knownParams } from '../contract/families.ts';

export interface EditForm {
  /** Scalar fields, as the strings multipart carries. */
  fields: Record<string, string>;
  /** `image` or repeated `image[]` parts, in the order sent. */
  images: Buffer[];
  mask: Buffer | null;
}

const FILE_FIELDS = new Set(['image', 'image[]', 'mask']);

/**
 * Read an edit form into memory. @fastify/multipart enforces the per-file and part-count limits
 * (registered in server.ts); the smaller mask limit is checked here.
 */
export async function readEditForm(
  request: FastifyRequest,
  limits: { maxImageBytes: number; maxMaskBytes: number },
): Promise<EditForm> {
  if (!request.isMultipart()) throw errors.unsupportedMediaType('multipart/form-data', request.headers['content-type']);
  const known = knownParams('edit');
  const form: EditForm = { fields: {}, images: [], mask: null };

  for await (const part of request.parts()) {
    const name = part.fieldname;
    if (!known.has(name)) throw errors.unknownParameter(name);
    let bytes: Buffer;
    if (part.type === 'file') {
      if (!FILE_FIELDS.has(name)) throw errors.invalidParameter(name, `'${name}' must be a text field, not a file.`);
      bytes = await readFile(part, name === 'mask' ? 'mask' : 'image', limits.maxImageBytes);
    } else if (FILE_FIELDS.has(name)) {
      // Azure's how-to says an image may also be sent as base64 data in a text field.
      bytes = fromBase64Field(name, String(part.value));
    } else {
      if (name in form.fields) throw errors.invalidParameter(name, `'${name}' was given more than once.`);
      form.fields[name] = String(part.value);
      continue;
    }
    if (name === 'mask') {
      if (form.mask) throw errors.invalidParameter('mask', "'mask' was given more than once.");
      if (bytes.length > limits.maxMaskBytes) throw errors.payloadTooLarge('mask', limits.maxMaskBytes);
      form.mask = bytes;
    } else {
      form.images.push(bytes);
    }
  }
  return form;
}

/** The plugin's per-file limit applies to every file; name the field that went over it. */
async function readFile(part: { toBuffer(): Promise<Buffer> }, param: string, limitBytes: number): Promise<Buffer> {
  try {
    return await part.toBuffer();
  } catch (error) {
    if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw errors.payloadTooLarge(param, limitBytes);
    throw error;
  }
}

function fromBase64Field(name: string, value: string): Buffer {
  const param = name === 'image[]' ? 'image' : name;
  if (/^https?:\/\//i.test(value.trim())) {
    throw errors.invalidImage(param, `'${param}' must be a file upload or base64 data; easel does not fetch URLs.`);
  }
  const data = value.trim().replace(/^data:[^;,]*;base64,/, '');
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(data))
    throw errors.invalidImage(param, `'${param}' is neither a file nor base64 data.`);
  return Buffer.from(data, 'base64');
}
