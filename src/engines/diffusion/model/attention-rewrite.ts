// Load-time rewrite of unfused multi-head attention into onnxruntime's com.microsoft
// MultiHeadAttention node, whose CPU kernel runs a flash-attention loop (tiles of the score matrix
// kept in cache, never the whole 4096×4096 matrix per head) where an export's MatMul → Softmax →
// MatMul writes and rereads every score matrix (docs/cpu-performance.md, "Fused attention").
//
// What is matched, per Softmax over the last axis:
//
//   q [B,S,C] → Reshape [·,·,H,d] → Transposes (composing to [0,2,1,3]) → (Mul/Div by a scale)* ─┐
//   k [B,T,C] → Reshape [·,·,H,d] → Transposes (composing to [0,2,3,1]) → (Mul/Div by a scale)* ─┴ MatMul → Softmax ─┐
//   v [B,T,C] → Reshape [·,·,H,d] → Transposes (composing to [0,2,1,3]) ─────────────────────────────────── MatMul ─┘
//   → Transpose [0,2,1,3] → Reshape to 3 dims
//   ⇒ MultiHeadAttention(q, k, v, num_heads = H, scale)
//
// H must be a constant (a Reshape shape that is an initializer, a Constant, or a Concat of such and
// of Unsqueezed scalars, as torch exports `view(batch, -1, heads, head_dim)`). A scale factor is a
// constant, or torch's scaled_dot_product_attention export of √(1/√d) (Sqrt(Div(1, Sqrt(Cast(
// Slice(Shape(q4), -1)))))) on each side, whose product is MultiHeadAttention's own default 1/√d.
// Anything else (a mask added to the scores, a score or intermediate tensor used elsewhere, heads
// folded into the batch as older exports do, subgraphs, float16) leaves that attention as it is and
// says why. Nodes that only fed the removed chain (the shape computations) are removed with it.
import { readFile, stat } from 'node:fs/promises';

import type ort from 'onnxruntime-node';

import {
  attributeInt,
  attributeInts,
  type Field,
  type NodeInfo,
  readFields,
  readNode,
  tensorValues,
  text,
  Writer,
} from './onnx-proto.ts';

export interface AttentionRewriteResult {
  /** The rewritten ModelProto, or null when no attention was fused (use the original). */
  model: Uint8Array | null;
  /** Attention blocks replaced by MultiHeadAttention. */
  fused: number;
  /** Softmax nodes left as they were, with the reason. */
  skipped: Array<{ node: string; reason: string }>;
}

const MS_DOMAIN = 'com.microsoft';

interface GraphIndex {
  nodes: NodeInfo[];
  producer: Map<string, number>;
  consumers: Map<string, number[]>;
  initializers: Map<string, Field[]>;
  graphOutputs: Set<string>;
}

class Unmatched extends Error {}
const fail = (reason: string): never => {
  throw new Unmatched(reason);
};

/** Rewrites every matching attention of `bytes` (a ModelProto); throws ProtoError on bytes that are not one. */
export function fuseAttention(bytes: Uint8Array): AttentionRewriteResult {
  const modelFields = readFields(bytes);
  const graphField = modelFields.find((f) => f.field === 7 && f.wire === 2);
  if (!graphField) return { model: null, fused: 0, skipped: [{ node: '(model)', reason: 'no graph' }] };
  const defaultOpset = modelFields
    .filter((f) => f.field === 8 && f.wire === 2)
    .map((f) => readFields(f.bytes!))
    .find((o) => !o.some((x) => x.field === 1 && text(x) !== '') || !o.some((x) => x.field === 1));
  const opset = Number(defaultOpset?.find((x) => x.field === 2)?.varint ?? 0n);
  const graphFields = readFields(graphField.bytes!);

  const index: GraphIndex = {
    nodes: [],
    producer: new Map(),
    consumers: new Map(),
    initializers: new Map(),
    graphOutputs: new Set(),
  };
  for (const f of graphFields) {
    if (f.field === 1) index.nodes.push(readNode(f.bytes!));
    else if (f.field === 5) {
      const tensor = readFields(f.bytes!);
      const name = tensor.find((x) => x.field === 8);
      if (name) index.initializers.set(text(name), tensor);
    } else if (f.field === 12) {
      const name = readFields(f.bytes!).find((x) => x.field === 1);
      if (name) index.graphOutputs.add(text(name));
    }
  }
  // A subgraph (If, Loop, Scan) may use any outer tensor without naming it as an input.
  const hasSubgraph = index.nodes.some((n) =>
    [...n.attributes.values()].some((a) => a.some((x) => x.field === 6 || x.field === 11)),
  );
  if (hasSubgraph) return { model: null, fused: 0, skipped: [{ node: '(graph)', reason: 'the graph has subgraphs' }] };
  // onnxruntime's CPU MultiHeadAttention is float32 only (TensorProto data_type 10 = float16).
  const float16 = [...index.initializers.values()].some((t) => t.some((x) => x.field === 2 && x.varint === 10n));
  if (float16) return { model: null, fused: 0, skipped: [{ node: '(graph)', reason: 'float16 weights' }] };
  index.nodes.forEach((node, i) => {
    for (const o of node.outputs) if (o) index.producer.set(o, i);
    for (const input of node.inputs) {
      if (!input) continue;
      const list = index.consumers.get(input) ?? [];
      list.push(i);
      index.consumers.set(input, list);
    }
  });

  const removed = new Set<number>();
  const replacements = new Map<number, Uint8Array>();
  const newInputs = new Set<string>();
  const skipped: AttentionRewriteResult['skipped'] = [];
  let fused = 0;
  index.nodes.forEach((node, i) => {
    if (!isOp(node, 'Softmax')) return;
    try {
      const match = matchAttention(index, i, opset);
      if ([...match.nodes].some((n) => removed.has(n))) fail('overlaps another match');
      for (const n of match.nodes) removed.add(n);
      replacements.set(match.anchor, match.node);
      for (const input of match.inputs) newInputs.add(input);
      fused++;
    } catch (error) {
      if (!(error instanceof Unmatched)) throw error;
      skipped.push({ node: node.name || node.outputs[0] || `#${i}`, reason: error.message });
    }
  });
  if (fused === 0) return { model: null, fused, skipped };
  removeDeadProducers(index, removed, newInputs);

  // Initializers only the removed nodes read (scales, shape constants) go too, unless also declared graph inputs.
  const used = new Set([...newInputs, ...index.graphOutputs]);
  index.nodes.forEach((node, i) => {
    if (!removed.has(i)) for (const input of node.inputs) used.add(input);
  });
  const graphInputs = new Set(
    graphFields.filter((f) => f.field === 11).map((f) => text(readFields(f.bytes!).find((x) => x.field === 1)!)),
  );
  const unusedInitializer = (f: Field) => {
    const name = readFields(f.bytes!).find((x) => x.field === 8);
    return name !== undefined && !used.has(text(name)) && !graphInputs.has(text(name));
  };

  const graph = new Writer();
  let nodeIndex = 0;
  for (const f of graphFields) {
    if (f.field === 5 && unusedInitializer(f)) continue;
    if (f.field !== 1) {
      graph.raw(f.raw);
      continue;
    }
    const i = nodeIndex++;
    const replacement = replacements.get(i);
    if (replacement) graph.bytes(1, replacement);
    else if (!removed.has(i)) graph.raw(f.raw);
  }
  const model = new Writer();
  const hasMsOpset = modelFields.some(
    (f) => f.field === 8 && f.wire === 2 && readFields(f.bytes!).some((x) => x.field === 1 && text(x) === MS_DOMAIN),
  );
  for (const f of modelFields) {
    if (f === graphField) model.bytes(7, graph.finish());
    else model.raw(f.raw);
  }
  // OperatorSetIdProto: domain=1, version=2.
  if (!hasMsOpset) model.bytes(8, new Writer().string(1, MS_DOMAIN).varint(2, 1).finish());
  return { model: model.finish(), fused, skipped };
}

interface Match {
  /** Every node of the attention chain, removed. */
  nodes: Set<number>;
  /** The chain's last node, whose place the new node takes. */
  anchor: number;
  node: Uint8Array;
  /** The new node's inputs (q, k, v), which stay in use. */
  inputs: string[];
}

function matchAttention(index: GraphIndex, softmaxIndex: number, opset: number): Match {
  const { nodes } = index;
  const softmax = nodes[softmaxIndex]!;
  const axis = attributeInt(softmax.attributes.get('axis')) ?? (opset >= 13 ? -1 : 1);
  if (axis !== -1 && axis !== 3) fail(`softmax over axis ${axis}, not the last`);
  const chain: Chain = { nodes: new Set([softmaxIndex]), support: new Set() };

  const scoresIndex = soleProducer(index, softmax.inputs[0]!, chain);
  const scores = nodes[scoresIndex]!;
  chain.nodes.add(scoresIndex);
  if (scores.opType === 'Add') fail('a mask or bias is added to the scores');
  if (!isOp(scores, 'MatMul')) fail(`the scores come from ${scores.opType}, not MatMul`);
  const outIndex = soleConsumer(index, softmax.outputs[0]!);
  const out = nodes[outIndex]!;
  if (!isOp(out, 'MatMul') || out.inputs[0] !== softmax.outputs[0]) fail('the probabilities do not feed a MatMul');
  chain.nodes.add(outIndex);

  const q = traceHeads(index, scores.inputs[0]!, chain, [0, 2, 1, 3], true);
  const k = traceHeads(index, scores.inputs[1]!, chain, [0, 2, 3, 1], true);
  const v = traceHeads(index, out.inputs[1]!, chain, [0, 2, 1, 3], false);
  if (q.heads !== k.heads || q.heads !== v.heads) fail(`head counts differ (${q.heads}, ${k.heads}, ${v.heads})`);
  const headSize = q.headSize ?? k.headSize ?? v.headSize;
  // torch's √(1/√d) reads d from the query's (or key's) heads.
  for (const source of [...q.scaleSources, ...k.scaleSources])
    if (!headTensorOf(index, source, q.split) && !headTensorOf(index, source, k.split))
      fail('a scale computed from another tensor');

  // Scale: constant factors times d^power; d is the head size the kernel sees.
  const constant = q.scale * k.scale;
  const power = q.power + k.power;
  let scale: number | null; // null: MultiHeadAttention's default 1/√d
  if (power === -0.5 && Math.abs(constant - 1) < 1e-6) scale = null;
  else if (power === 0) scale = constant;
  else if (headSize !== undefined) scale = constant * headSize ** power;
  else scale = fail('the scale depends on a head size that is not a constant');

  const mergeIndex = soleConsumer(index, out.outputs[0]!);
  const merge = nodes[mergeIndex]!;
  if (!isOp(merge, 'Transpose') || !same(attributeInts(merge.attributes.get('perm')), [0, 2, 1, 3]))
    fail('the heads are not merged by Transpose [0,2,1,3]');
  chain.nodes.add(mergeIndex);
  const reshapeIndex = soleConsumer(index, merge.outputs[0]!);
  const reshape = nodes[reshapeIndex]!;
  if (!isOp(reshape, 'Reshape')) fail('the merged heads are not reshaped');
  const shape = shapeElements(index, reshape.inputs[1]!);
  if (shape.length !== 3) fail('the merged heads are not reshaped to 3 dimensions');
  const last = shape[2];
  if (typeof last === 'number' && last !== -1 && headSize !== undefined && last !== q.heads * headSize)
    fail(`the merged width ${last} is not heads × head size`);
  chain.nodes.add(reshapeIndex);

  const node = new Writer();
  for (const input of [q.input, k.input, v.input]) node.string(1, input);
  node.string(2, reshape.outputs[0]!);
  node.string(3, `${reshape.name || softmax.name || 'attention'}/MultiHeadAttention`);
  node.string(4, 'MultiHeadAttention');
  // AttributeProto: name=1, f=2, i=3, type=20 (FLOAT 1, INT 2).
  node.bytes(5, new Writer().string(1, 'num_heads').varint(3, q.heads).varint(20, 2).finish());
  if (scale !== null) node.bytes(5, new Writer().string(1, 'scale').float(2, scale).varint(20, 1).finish());
  node.string(7, MS_DOMAIN);
  return { nodes: chain.nodes, anchor: reshapeIndex, node: node.finish(), inputs: [q.input, k.input, v.input] };
}

/** The nodes a match removes, and those (the scale's shape arithmetic) that may use its tensors and go if unused. */
interface Chain {
  nodes: Set<number>;
  support: Set<number>;
}

interface Heads {
  /** The [B, S, C] tensor before the head split. */
  input: string;
  /** The head split's 4-D output. */
  split: string;
  /** Tensors whose shape gives torch's scale factors. */
  scaleSources: string[];
  heads: number;
  headSize?: number;
  scale: number;
  /** The scale's factor d^power (torch's √(1/√d) per side). */
  power: number;
}

/**
 * Walks from a MatMul operand back through scale factors and Transposes to the Reshape that split
 * the heads, checking that the Transposes compose to `perm` (operand dim i = split dim perm[i]).
 */
function traceHeads(index: GraphIndex, tensor: string, chain: Chain, perm: number[], scaled: boolean): Heads {
  let composed = [0, 1, 2, 3];
  let scale = 1;
  let power = 0;
  let current = tensor;
  const scaleSources: string[] = [];
  for (let steps = 0; steps < 16; steps++) {
    const i = soleProducer(index, current, chain);
    const node = index.nodes[i]!;
    if (scaled && (isOp(node, 'Mul') || isOp(node, 'Div'))) {
      const [a, b] = node.inputs as [string, string];
      // x·s, s·x or x/s.
      let factor = scaleFactor(index, b);
      let other = a;
      if (!factor && isOp(node, 'Mul')) {
        factor = scaleFactor(index, a);
        other = b;
      }
      if (!factor) return fail(`${node.opType} by something other than a scale`);
      const sign = isOp(node, 'Div') ? -1 : 1;
      scale *= factor.constant ** sign;
      power += factor.power * sign;
      if (factor.of !== undefined) scaleSources.push(factor.of);
      for (const n of factor.nodes) chain.support.add(n);
      chain.nodes.add(i);
      current = other;
      continue;
    }
    if (isOp(node, 'Transpose')) {
      const p = attributeInts(node.attributes.get('perm'));
      if (!p || p.length !== 4) fail('a Transpose of other than 4 dimensions');
      composed = composed.map((d) => p![d]!);
      chain.nodes.add(i);
      current = node.inputs[0]!;
      continue;
    }
    if (isOp(node, 'Reshape')) {
      if (!same(composed, perm)) fail(`the head layout [${composed}] is not [${perm}]`);
      const shape = shapeElements(index, node.inputs[1]!);
      if (shape.length !== 4) fail('the heads are not split into 4 dimensions');
      const [heads, headSize] = [shape[2], shape[3]];
      if (typeof heads !== 'number' || heads <= 0) fail('the head count is not a constant');
      chain.nodes.add(i);
      return {
        input: node.inputs[0]!,
        split: node.outputs[0]!,
        scaleSources,
        heads: heads as number,
        ...(typeof headSize === 'number' && headSize > 0 ? { headSize } : {}),
        scale,
        power,
      };
    }
    fail(`${node.opType} between the head split and the attention`);
  }
  return fail('the head split is too far from the attention');
}

/** A scale operand: a constant scalar, or torch's √(1/√d) computed from the shape of a tensor `of`. */
function scaleFactor(
  index: GraphIndex,
  name: string,
): { constant: number; power: number; of?: string; nodes: number[] } | null {
  const values = constantValues(index, name);
  if (values) return values.length === 1 ? { constant: values[0]!, power: 0, nodes: [] } : null;
  // Sqrt(Div(1, Sqrt(Cast(Slice(Shape(x), [-1], …))))), with Casts allowed between.
  const sqrt = producerNode(index, skipCasts(index, name));
  if (!sqrt || !isOp(sqrt, 'Sqrt')) return null;
  const div = producerNode(index, skipCasts(index, sqrt.inputs[0]!));
  if (!div || !isOp(div, 'Div')) return null;
  const one = constantValues(index, div.inputs[0]!);
  if (!one || one.length !== 1 || one[0] !== 1) return null;
  const inner = producerNode(index, skipCasts(index, div.inputs[1]!));
  if (!inner || !isOp(inner, 'Sqrt')) return null;
  const slice = producerNode(index, skipCasts(index, inner.inputs[0]!));
  if (!slice || !isOp(slice, 'Slice')) return null;
  const starts = slice.inputs[1]
    ? constantValues(index, slice.inputs[1])
    : attributeInts(slice.attributes.get('starts'));
  if (!starts || !same(starts, [-1])) return null;
  const shape = producerNode(index, slice.inputs[0]!);
  if (!shape || !isOp(shape, 'Shape') || shape.attributes.size > 0) return null;
  // Every node from the Shape to the Mul's operand (Casts included) may use the heads and goes if unused.
  const nodes: number[] = [];
  for (let t = name; t !== shape.inputs[0];) {
    const p = index.producer.get(t)!;
    nodes.push(p);
    t = index.nodes[p]!.inputs[index.nodes[p]!.opType === 'Div' ? 1 : 0]!;
  }
  return { constant: 1, power: -0.25, of: shape.inputs[0]!, nodes };
}

/** Whether `tensor` is `split` or reached from it through Transposes and Muls (the 4-D heads of one side). */
function headTensorOf(index: GraphIndex, tensor: string, split: string): boolean {
  let current = tensor;
  for (let steps = 0; steps < 16; steps++) {
    if (current === split) return true;
    const node = producerNode(index, current);
    if (!node || !(isOp(node, 'Transpose') || isOp(node, 'Mul') || isOp(node, 'Div'))) return false;
    current = node.inputs[0]!;
  }
  return false;
}

function skipCasts(index: GraphIndex, name: string): string {
  let current = name;
  for (let node = producerNode(index, current); node && isOp(node, 'Cast'); node = producerNode(index, current))
    current = node.inputs[0]!;
  return current;
}

/** The elements of a 1-D shape tensor: numbers where constant, null where computed at run time. */
function shapeElements(index: GraphIndex, name: string): Array<number | null> {
  const values = constantValues(index, name);
  if (values) return values;
  const node = producerNode(index, name);
  if (!node || !isOp(node, 'Concat')) fail('a reshape shape that is neither a constant nor a Concat');
  const elements: Array<number | null> = [];
  for (const input of node!.inputs) {
    const constant = constantValues(index, input);
    if (constant) {
      elements.push(...constant);
      continue;
    }
    const part = producerNode(index, input);
    // Unsqueeze of a scalar: one element, known if the scalar is constant.
    if (!part || !isOp(part, 'Unsqueeze')) fail('a reshape shape part that is not a constant or an Unsqueeze');
    const scalar = constantValues(index, part!.inputs[0]!);
    elements.push(scalar && scalar.length === 1 ? scalar[0]! : null);
  }
  return elements;
}

/** Values of an initializer or Constant node output, when it is a small float or int64 tensor. */
function constantValues(index: GraphIndex, name: string): number[] | null {
  const initializer = index.initializers.get(name);
  if (initializer) return tensorValues(initializer)?.values ?? null;
  const node = producerNode(index, name);
  if (!node || !isOp(node, 'Constant')) return null;
  const value = node.attributes.get('value');
  if (value) {
    const tensor = value.find((x) => x.field === 5);
    return tensor ? (tensorValues(readFields(tensor.bytes!))?.values ?? null) : null;
  }
  const single = node.attributes.get('value_float') ?? node.attributes.get('value_int');
  if (single) return [attributeInt(single) ?? readFloat(single)];
  const list = node.attributes.get('value_ints');
  return list ? (attributeInts(list) ?? null) : null;
}

function readFloat(attribute: Field[]): number {
  const f = attribute.find((x) => x.field === 2)!;
  return new DataView(f.bytes!.buffer, f.bytes!.byteOffset, 4).getFloat32(0, true);
}

function producerNode(index: GraphIndex, name: string): NodeInfo | undefined {
  const i = index.producer.get(name);
  return i === undefined ? undefined : index.nodes[i];
}

/** The node producing `name`, which must have no other use (so that removing the chain loses nothing). */
function soleProducer(index: GraphIndex, name: string, chain: Chain): number {
  const i = index.producer.get(name);
  if (i === undefined) fail(`${name} is not computed by a node`);
  if (index.graphOutputs.has(name)) fail(`${name} is a graph output`);
  const users = index.consumers.get(name) ?? [];
  if (users.some((u) => !chain.nodes.has(u) && !chain.support.has(u)))
    fail(`${name} is also used outside the attention`);
  if (index.nodes[i!]!.outputs.filter((o) => o).length !== 1) fail(`${name}'s node has several outputs`);
  return i!;
}

function soleConsumer(index: GraphIndex, name: string): number {
  const users = index.consumers.get(name) ?? [];
  if (users.length !== 1 || index.graphOutputs.has(name)) fail(`${name} has ${users.length} uses`);
  return users[0]!;
}

/** Removes, after the chains, the nodes that only fed them (the shape arithmetic of the head splits). */
function removeDeadProducers(index: GraphIndex, removed: Set<number>, live: Set<string>): void {
  const pending = [...removed];
  while (pending.length > 0) {
    const i = pending.pop()!;
    for (const input of index.nodes[i]!.inputs) {
      const p = index.producer.get(input);
      if (p === undefined || removed.has(p)) continue;
      const node = index.nodes[p]!;
      const used = node.outputs.some(
        (o) => live.has(o) || index.graphOutputs.has(o) || (index.consumers.get(o) ?? []).some((c) => !removed.has(c)),
      );
      if (used) continue;
      removed.add(p);
      pending.push(p);
    }
  }
}

const isOp = (node: NodeInfo, op: string) => node.opType === op && (node.domain === '' || node.domain === 'ai.onnx');
const same = (a: readonly number[] | undefined, b: readonly number[]) =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Model files above this are left as they are: the rewrite reads the whole file, and a graph with
 * its weights inline would then sit in memory twice more while onnxruntime parses it. Exports of SD
 * UNets keep their weights in an external-data file, so their model.onnx is well under a megabyte.
 */
export const REWRITE_MAX_FILE_BYTES = 256 * 2 ** 20;

/** `path` rewritten (fuseAttention), or why not: too big, or nothing matched (`fused` 0). */
export async function rewriteModelFile(path: string): Promise<AttentionRewriteResult & { reason?: string }> {
  const { size } = await stat(path);
  if (size > REWRITE_MAX_FILE_BYTES)
    return { model: null, fused: 0, skipped: [], reason: `${size} bytes, over ${REWRITE_MAX_FILE_BYTES}` };
  return fuseAttention(await readFile(path));
}

/**
 * Session options plus onnxruntime's `session.model_external_initializers_file_folder_path`: a model
 * opened from memory has no folder of its own, so its external-data files are looked up there.
 */
export function withExternalDataFolder(
  options: ort.InferenceSession.SessionOptions,
  folder: string,
): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as Record<string, unknown>;
  const session = (extra.session ?? {}) as Record<string, unknown>;
  return {
    ...options,
    extra: { ...extra, session: { ...session, model_external_initializers_file_folder_path: folder } },
  };
}
