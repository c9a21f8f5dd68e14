// Just enough of onnx.proto's wire format to rewrite a graph's nodes and leave everything else as it
// was: a message is read as its list of fields, each kept as its original bytes, so that
// initializers (inline or external-data references), value infos and metadata are copied through
// untouched and only the nodes that change are encoded anew.
//
// Hand-written on purpose: the npm ONNX packages (onnx-proto) bring protobufjs and decode every
// initializer into JavaScript objects, where this only needs the node list and a few small constants
// (field numbers from onnx.proto, <https://github.com/onnx/onnx/blob/main/onnx/onnx.proto>).

/** One field of a message: its number, wire type, and its bytes (tag included) in the original buffer. */
export interface Field {
  field: number;
  wire: number;
  /** The whole field, tag and value, for copying it through unchanged. */
  raw: Uint8Array;
  /** Length-delimited (wire 2): the payload. */
  bytes?: Uint8Array;
  /** Varint (wire 0): the value; fixed32 (wire 5) and fixed64 (wire 1): the payload bytes in `bytes`. */
  varint?: bigint;
}

export class ProtoError extends Error {}

function readVarint(buf: Uint8Array, at: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const byte = buf[i]!;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
    shift += 7n;
  }
  throw new ProtoError(`truncated varint at byte ${at}`);
}

/** The fields of one message, in order. Throws ProtoError on bytes that are not a protobuf message. */
export function readFields(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const start = at;
    const [tag, afterTag] = readVarint(buf, at);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    at = afterTag;
    const entry: Field = { field, wire, raw: buf };
    if (wire === 0) {
      [entry.varint, at] = readVarint(buf, at);
    } else if (wire === 2) {
      const [length, afterLength] = readVarint(buf, at);
      const end = afterLength + Number(length);
      if (end > buf.length) throw new ProtoError(`field ${field} runs past the end of its message`);
      entry.bytes = buf.subarray(afterLength, end);
      at = end;
    } else if (wire === 5 || wire === 1) {
      const end = at + (wire === 5 ? 4 : 8);
      if (end > buf.length) throw new ProtoError(`field ${field} runs past the end of its message`);
      entry.bytes = buf.subarray(at, end);
      at = end;
    } else {
      throw new ProtoError(`unsupported wire type ${wire} (field ${field})`);
    }
    if (field === 0) throw new ProtoError('field number 0');
    entry.raw = buf.subarray(start, at);
    fields.push(entry);
  }
  return fields;
}

const decoder = new TextDecoder();
export const text = (f: Field): string => decoder.decode(f.bytes);

/** Packed (wire 2) or repeated single (wire 0) varints of one field number, as signed int64 numbers. */
export function int64s(fields: readonly Field[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(Number(BigInt.asIntN(64, f.varint!)));
    else if (f.wire === 2) {
      for (let at = 0; at < f.bytes!.length;) {
        const [v, next] = readVarint(f.bytes!, at);
        out.push(Number(BigInt.asIntN(64, v)));
        at = next;
      }
    }
  }
  return out;
}

/** Packed (wire 2) or repeated single (wire 5) floats of one field number. */
export function floats(fields: readonly Field[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    const view = new DataView(f.bytes!.buffer, f.bytes!.byteOffset, f.bytes!.byteLength);
    for (let at = 0; at + 4 <= f.bytes!.length; at += 4) out.push(view.getFloat32(at, true));
  }
  return out;
}

/** Encodes fields; `Writer` mirrors tools/model-builder/onnx.ts's Message for the few new nodes. */
export class Writer {
  private readonly parts: Uint8Array[] = [];

  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    return this;
  }
  varint(field: number, value: number | bigint): this {
    this.parts.push(varint((field << 3) | 0), varint(value));
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.parts.push(varint((field << 3) | 2), varint(data.length), data);
    return this;
  }
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }
  float(field: number, value: number): this {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setFloat32(0, value, true);
    this.parts.push(varint((field << 3) | 5), data);
    return this;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((sum, p) => sum + p.length, 0));
    let offset = 0;
    for (const p of this.parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }
}

function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? low : low | 0x80);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

/** NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7. */
export interface NodeInfo {
  inputs: string[];
  outputs: string[];
  name: string;
  opType: string;
  domain: string;
  attributes: Map<string, Field[]>;
}

export function readNode(bytes: Uint8Array): NodeInfo {
  const node: NodeInfo = { inputs: [], outputs: [], name: '', opType: '', domain: '', attributes: new Map() };
  for (const f of readFields(bytes)) {
    if (f.field === 1) node.inputs.push(text(f));
    else if (f.field === 2) node.outputs.push(text(f));
    else if (f.field === 3) node.name = text(f);
    else if (f.field === 4) node.opType = text(f);
    else if (f.field === 7) node.domain = text(f);
    else if (f.field === 5) {
      const attribute = readFields(f.bytes!);
      const name = attribute.find((a) => a.field === 1);
      if (name) node.attributes.set(text(name), attribute);
    }
  }
  return node;
}

/** AttributeProto: i=3 (int), ints=8, t=5 (tensor). */
export const attributeInt = (attribute: Field[] | undefined): number | undefined => int64s(attribute ?? [], 3)[0];
export const attributeInts = (attribute: Field[] | undefined): number[] | undefined =>
  attribute ? int64s(attribute, 8) : undefined;

/** A small constant tensor's values (float or int64), or null when it is not one this reader decodes. */
export function tensorValues(tensor: Field[]): { dims: number[]; values: number[] } | null {
  // TensorProto: dims=1, data_type=2, float_data=4, int64_data=7, raw_data=9, data_location=14.
  const dims = int64s(tensor, 1);
  const type = Number(tensor.find((f) => f.field === 2)?.varint ?? 0n);
  if (tensor.some((f) => f.field === 14 && f.varint === 1n)) return null; // external data
  const raw = tensor.find((f) => f.field === 9)?.bytes;
  if (type === 1) {
    if (!raw) return { dims, values: floats(tensor, 4) };
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return { dims, values: Array.from({ length: raw.length >> 2 }, (_, i) => view.getFloat32(4 * i, true)) };
  }
  if (type === 7) {
    if (!raw) return { dims, values: int64s(tensor, 7) };
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return { dims, values: Array.from({ length: raw.length >> 3 }, (_, i) => Number(view.getBigInt64(8 * i, true))) };
  }
  return null;
}
