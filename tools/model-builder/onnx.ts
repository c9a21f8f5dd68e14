// A minimal ONNX writer: just enough of onnx.proto to write the tiny test models (docs/diffusion.md, "Tiny test
// models")
// and the full-size architecture presets, whose weights are made lazily and streamed to disk.
//
// Hand-written on purpose: an ONNX file is a protobuf ModelProto, and the handful of messages needed
// here take under 200 lines of varint/length-delimited encoding. The alternative (npm onnx-proto) drags in
// protobufjs 6 and its generated code, and its packed float_data path was slow for real tables.
// Field numbers are those of onnx.proto (checked against onnx-proto's generated encoder; docs/diffusion.md, "Tiny test
// models").

import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type DataType = 'float32' | 'float16' | 'int32' | 'int64' | 'int8';
/** A dimension: a fixed size, or a symbolic name (`dim_param`) such as "batch_size". */
export type Dim = number | string;
/** float16 data is given as its IEEE half bits (Node 20 has no Float16Array). */
export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Int8Array;
/**
 * Weights made on demand, when the model is encoded or written: a 3.5 GB UNet then never sits in
 * memory whole, only one tensor at a time.
 */
export type LazyTensorData = () => TensorData;
export type Attribute =
  number | string | number[] | { ints: number[] } | { floats: number[] } | { float: number } | { tensor: Tensor };

const ELEM_TYPE: Record<DataType, number> = { float32: 1, int8: 3, int32: 6, int64: 7, float16: 10 };
export const ONNX_TYPE: Readonly<Record<DataType, number>> = ELEM_TYPE;

/** Encodes one protobuf message; fields are appended in call order. */
class Message {
  private readonly parts: Uint8Array[] = [];

  varint(field: number, value: number | bigint): this {
    this.parts.push(tag(field, 0), varint(value));
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.parts.push(tag(field, 2), varint(data.length), data);
    return this;
  }
  string(field: number, text: string): this {
    return this.bytes(field, new TextEncoder().encode(text));
  }
  message(field: number, message: Message): this {
    return this.bytes(field, message.finish());
  }
  float(field: number, value: number): this {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setFloat32(0, value, true);
    this.parts.push(tag(field, 5), data);
    return this;
  }
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    return this.bytes(field, concat(values.map(varint)));
  }
  packedFloats(field: number, values: readonly number[]): this {
    return this.bytes(field, new Uint8Array(Float32Array.from(values).buffer));
  }
  finish(): Uint8Array {
    return concat(this.parts);
  }
}

function tag(field: number, wireType: number): Uint8Array {
  return varint((field << 3) | wireType);
}

/** Base-128 varint; negative int64 values take ten bytes (two's complement), as protobuf requires. */
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

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Raw little-endian bytes of typed-array data (every platform Node targets is little-endian). */
function rawBytes(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface Tensor {
  name: string;
  type: DataType;
  dims: number[];
  data: TensorData;
}

/** TensorProto: dims=1, data_type=2, name=8, raw_data=9, external_data=13, data_location=14. */
function tensorProto(t: Tensor, external?: { location: string; offset: number }): Message {
  const m = new Message().packedVarints(1, t.dims).varint(2, ELEM_TYPE[t.type]).string(8, t.name);
  if (!external) return m.bytes(9, rawBytes(t.data));
  const entry = (key: string, value: string) => new Message().string(1, key).string(2, value);
  return m
    .message(13, entry('location', external.location))
    .message(13, entry('offset', String(external.offset)))
    .message(13, entry('length', String(t.data.byteLength)))
    .varint(14, 1);
}

const BYTES_PER_ELEMENT: Record<DataType, number> = { float32: 4, float16: 2, int32: 4, int64: 8, int8: 1 };

interface InitializerEntry {
  name: string;
  type: DataType;
  dims: number[];
  data: TensorData | LazyTensorData;
  external: boolean;
}

/** The tensor of an entry, its lazy data made now and checked against the declared dims. */
function materialize(entry: InitializerEntry): Tensor {
  const data = typeof entry.data === 'function' ? entry.data() : entry.data;
  const count = entry.dims.reduce((a, b) => a * b, 1);
  if (data.length !== count || data.BYTES_PER_ELEMENT !== BYTES_PER_ELEMENT[entry.type]) {
    throw new RangeError(
      `initializer ${entry.name}: ${data.length} values of ${data.BYTES_PER_ELEMENT} bytes for ${entry.type} [${entry.dims}]`,
    );
  }
  return { name: entry.name, type: entry.type, dims: entry.dims, data };
}

/** AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, type=20. */
function attributeProto(name: string, value: Attribute): Message {
  const m = new Message().string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError(`attribute ${name}: write {float: ${value}} for a float`);
    return m.varint(3, value).varint(20, 2);
  }
  if (typeof value === 'string') return m.string(4, value).varint(20, 3);
  if (Array.isArray(value)) return m.packedVarints(8, value).varint(20, 7);
  if ('ints' in value) return m.packedVarints(8, value.ints).varint(20, 7);
  if ('floats' in value) return m.packedFloats(7, value.floats).varint(20, 6);
  if ('float' in value) return m.float(2, value.float).varint(20, 1);
  return m.message(5, tensorProto(value.tensor)).varint(20, 4);
}

/**
 * ValueInfoProto { name=1, type=2 { tensor_type=1 { elem_type=1, shape=2 { dim=1 { dim_value=1 | dim_param=2 } } } } };
 * dims null leaves the shape out (rank unknown).
 */
function valueInfoProto(name: string, type: DataType, dims: readonly Dim[] | null): Message {
  const tensorType = new Message().varint(1, ELEM_TYPE[type]);
  if (dims) {
    const shape = new Message();
    for (const d of dims)
      shape.message(1, typeof d === 'number' ? new Message().varint(1, d) : new Message().string(2, d));
    tensorType.message(2, shape);
  }
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/**
 * Collects a graph, then encodes it as a ModelProto (opset 17, IR version 8; docs/diffusion.md, "Tiny test models").
 */
export class GraphBuilder {
  private readonly nodes: Message[] = [];
  private readonly inputs: Message[] = [];
  private readonly outputs: Message[] = [];
  private readonly initializers: InitializerEntry[] = [];
  private nodeCount = 0;
  /** Operator-set domains other than the default one that nodes use (e.g. com.microsoft). */
  private readonly domains = new Set<string>();

  constructor(readonly name: string) {}

  input(name: string, type: DataType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfoProto(name, type, dims));
    return name;
  }
  /** dims null: shape not declared (e.g. to expose an intermediate tensor while debugging). */
  output(name: string, type: DataType, dims: readonly Dim[] | null): string {
    this.outputs.push(valueInfoProto(name, type, dims));
    return name;
  }
  /** Adds a node and returns its first output's name, so nodes chain as expressions. */
  node(
    op: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs: Record<string, Attribute> = {},
    options: { domain?: string } = {},
  ): string {
    const m = new Message();
    for (const i of inputs) m.string(1, i);
    for (const o of outputs) m.string(2, o);
    m.string(3, `${op}_${this.nodeCount++}`).string(4, op);
    for (const [key, value] of Object.entries(attrs)) m.message(5, attributeProto(key, value));
    // NodeProto.domain = 7; the model then imports that domain's operator set (version 1).
    if (options.domain) {
      m.string(7, options.domain);
      this.domains.add(options.domain);
    }
    this.nodes.push(m);
    return outputs[0] ?? '';
  }
  /**
   * A weight; with `external` it goes to the external-data file when `encode` or `write` is given
   * one. Lazy data is made when the model is encoded or written, once per call.
   */
  initializer(
    name: string,
    type: DataType,
    dims: number[],
    data: TensorData | LazyTensorData,
    options: { external?: boolean } = {},
  ): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (typeof data !== 'function' && data.length !== count)
      throw new RangeError(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    this.initializers.push({ name, type, dims, data, external: options.external ?? false });
    return name;
  }

  /** Name, type and dims of every initializer, in order (no lazy data is made). */
  initializerInfo(): Array<{ name: string; type: DataType; dims: readonly number[]; external: boolean }> {
    return this.initializers.map(({ name, type, dims, external }) => ({ name, type, dims, external }));
  }

  /**
   * @param externalData file name (relative to the model) for initializers marked external, e.g.
   *   "model.onnx_data"; its bytes come back as `data`, each tensor 64-byte aligned.
   */
  encode(options: { externalData?: string; producer?: string } = {}): { model: Uint8Array; data?: Uint8Array } {
    const chunks: Uint8Array[] = [];
    const model = this.modelProto(options, (bytes) => chunks.push(bytes));
    return { model, data: options.externalData !== undefined ? concat(chunks) : undefined };
  }

  /**
   * Writes the model to `modelPath` and, with `externalData`, the external initializers to that file
   * beside it, one tensor at a time (protobuf caps a message at 2 GB, and the sd-turbo UNet is 3.5 GB
   * of weights). Returns the bytes written to each file.
   */
  write(
    modelPath: string,
    options: { externalData?: string; producer?: string } = {},
  ): { modelBytes: number; dataBytes: number } {
    let dataBytes = 0;
    let model: Uint8Array;
    if (options.externalData === undefined) {
      model = this.modelProto(options, () => undefined);
    } else {
      const fd = openSync(join(dirname(modelPath), options.externalData), 'w');
      try {
        model = this.modelProto(options, (bytes) => {
          for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done);
          dataBytes += bytes.length;
        });
      } finally {
        closeSync(fd);
      }
    }
    writeFileSync(modelPath, model);
    return { modelBytes: model.length, dataBytes };
  }

  /** The ModelProto, handing external tensor bytes (with alignment padding) to `sink` in file order. */
  private modelProto(
    options: { externalData?: string; producer?: string },
    sink: (bytes: Uint8Array) => void,
  ): Uint8Array {
    const graph = new Message();
    for (const n of this.nodes) graph.message(1, n);
    graph.string(2, this.name);
    let offset = 0;
    for (const entry of this.initializers) {
      const tensor = materialize(entry);
      if (entry.external && options.externalData !== undefined) {
        const padding = (64 - (offset % 64)) % 64;
        if (padding > 0) sink(new Uint8Array(padding));
        offset += padding;
        sink(rawBytes(tensor.data));
        graph.message(5, tensorProto(tensor, { location: options.externalData, offset }));
        offset += tensor.data.byteLength;
      } else {
        graph.message(5, tensorProto(tensor));
      }
    }
    for (const i of this.inputs) graph.message(11, i);
    for (const o of this.outputs) graph.message(12, o);
    const model = new Message()
      .varint(1, 8)
      .string(2, options.producer ?? 'easel model-builder')
      .message(7, graph)
      .message(8, new Message().string(1, '').varint(2, 17));
    for (const domain of this.domains) model.message(8, new Message().string(1, domain).varint(2, 1));
    return model.finish();
  }
}
