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
export async function readEditForm(request: FastifyRequest, limits: { maxMaskBytes: number }): Promise<EditForm> {
  if (!request.isMultipart()) throw errors.unsupportedMediaType('multipart/form-data', request.headers['content-type']);
  const known = knownParams('edit');
  const form: EditForm = { fields: {}, images: [], mask: null };

  for await (const part of request.parts()) {
    const name = part.fieldname;
    if (!known.has(name)) throw errors.unknownParameter(name);
    let bytes: Buffer;
    if (part.type === 'file') {
      if (!FILE_FIELDS.has(name)) throw errors.invalidParameter(name, `'${name}' must be a text field, not a file.`);
      bytes = await part.toBuffer();
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

function fromBase64Field(name: string, value: string): Buffer {
  const param = name === 'image[]' ? 'image' : name;
  if (/^https?:\/\//i.test(value.trim())) {
    throw errors.invalidImage(param, `'${param}' must be a file upload or base64 data; easel does not fetch URLs.`);
  }
  const data = value.trim().replace(/^data:[^;,]*;base64,/, '');
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(data)) throw errors.invalidImage(param, `'${param}' is neither a file nor base64 data.`);
  return Buffer.from(data, 'base64');
}
