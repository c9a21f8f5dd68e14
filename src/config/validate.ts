// Checks a value against a configuration schema and words the first problem for a person: which
// setting (its path), what it must be, and for an unknown key the nearest known one. TypeBox
// decides whether a value is valid; this walk only finds where, so the message names the setting.
import type { TSchema } from 'typebox';
import Value from 'typebox/value';

/** A JSON Schema node as TypeBox builds it (the keywords this walk reads). */
interface Node {
  type?: string;
  enum?: readonly unknown[];
  const?: unknown;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  patternProperties?: Record<string, Node>;
  required?: string[];
  items?: Node;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  multipleOf?: number;
  minLength?: number;
  errorMessage?: string;
  secret?: boolean;
}

export interface Problem {
  /** The setting, e.g. `limits.maxImageBytes`, or for an unknown key `queu:`. */
  setting: string;
  problem: string;
}

/** The first problem of `value` against `schema`, or null when it is valid. */
export function findProblem(schema: TSchema, value: unknown, path = ''): Problem | null {
  if (Value.Check(schema, value)) return null;
  return (
    walk(schema as Node, value, path) ?? {
      setting: path || '(the configuration)',
      problem: `is invalid: ${Value.Errors(schema, value)[0]?.message ?? 'unknown reason'}`,
    }
  );
}

function walk(node: Node, value: unknown, path: string): Problem | null {
  if (Value.Check(node as TSchema, value)) return null;
  if (node.anyOf) return union(node.anyOf, value, path);
  if (node.type === 'object' && isObject(value)) return object(node, value, path);
  if (
    node.type === 'array' &&
    Array.isArray(value) &&
    node.items !== undefined &&
    (node.items.type === 'object' || node.items.anyOf)
  ) {
    for (const [i, item] of (value as unknown[]).entries()) {
      const found = walk(node.items, item, `${path}[${i}]`);
      if (found) return found;
    }
  }
  return { setting: path, problem: `${describe(node)}${node.secret ? '' : `, got ${shown(value)}`}` };
}

function object(node: Node, value: Record<string, unknown>, path: string, others: Node[] = []): Problem | null {
  const properties = node.properties ?? {};
  for (const [key, item] of Object.entries(value)) {
    const at = join(path, key);
    const known =
      properties[key] ?? Object.entries(node.patternProperties ?? {}).find(([p]) => new RegExp(p).test(key))?.[1];
    if (known) {
      const found = walk(known, item, at);
      if (found) return found;
      continue;
    }
    if (node.patternProperties) continue;
    const elsewhere = others.find((o) => o.properties?.[key] !== undefined);
    const hint = elsewhere
      ? ` here (it belongs with ${discriminant(elsewhere)})`
      : suggestion(path, key, Object.keys(properties));
    return { setting: `${at}:`, problem: `unknown setting${hint}` };
  }
  for (const key of node.required ?? []) {
    if (value[key] === undefined)
      return { setting: join(path, key), problem: `${describe(properties[key]!)}; it is missing` };
  }
  return null;
}

/**
 * A union of objects told apart by one constant key (a deployment's engine, a classifier's kind), or of plain
 * alternatives.
 */
function union(branches: Node[], value: unknown, path: string): Problem | null {
  const key = isObject(value)
    ? Object.keys(branches[0]?.properties ?? {}).find((k) =>
        branches.every((b) => b.properties?.[k]?.const !== undefined),
      )
    : undefined;
  if (key !== undefined && isObject(value)) {
    const given = value[key];
    const chosen = branches.find(
      (b) => b.properties![key]!.const === given || (given === undefined && !b.required?.includes(key)),
    );
    if (!chosen)
      return {
        setting: join(path, key),
        problem: `must be one of ${branches.map((b) => b.properties![key]!.const).join(', ')}, got ${shown(given)}`,
      };
    return object(
      chosen,
      value,
      path,
      branches.filter((b) => b !== chosen),
    );
  }
  const objectBranch = isObject(value) ? branches.find((b) => b.type === 'object') : undefined;
  if (objectBranch) return walk(objectBranch, value, path);
  return {
    setting: path,
    problem: `must be ${branches.map((b) => describe(b).replace(/^must be /, '')).join(', or ')}, got ${shown(value)}`,
  };
}

function discriminant(node: Node): string {
  const [key, schema] = Object.entries(node.properties ?? {}).find(([, s]) => s.const !== undefined) ?? ['', {}];
  return `${key} ${JSON.stringify((schema as Node).const)}`;
}

/** What a value of this schema must be, in words. */
export function describe(node: Node): string {
  if (node.errorMessage) return node.errorMessage;
  if (node.enum) return `must be one of ${node.enum.join(', ')}`;
  if (node.const !== undefined) return `must be ${JSON.stringify(node.const)}`;
  if (node.anyOf) return `must be ${node.anyOf.map((b) => describe(b).replace(/^must be /, '')).join(', or ')}`;
  switch (node.type) {
    case 'integer':
    case 'number': {
      const kind = node.type === 'integer' ? 'an integer' : 'a number';
      const step = node.multipleOf ? ` multiple of ${node.multipleOf}` : '';
      const low =
        node.exclusiveMinimum !== undefined ? `above ${node.exclusiveMinimum}` : `from ${node.minimum ?? '-∞'}`;
      const high =
        node.maximum === undefined || node.maximum === Number.MAX_SAFE_INTEGER ? ' upwards' : ` to ${node.maximum}`;
      return `must be ${kind}${step} ${low}${high}`;
    }
    case 'string':
      return node.minLength ? 'must be a non-empty string' : 'must be a string';
    case 'boolean':
      return 'must be true or false';
    case 'null':
      return 'must be null';
    case 'array':
      return node.items?.type === 'string' ? 'must be a list of strings' : 'must be a list';
    case 'object':
      return node.required?.length ? `must be an object with ${node.required.join(', ')}` : 'must be an object';
    default:
      return 'is invalid';
  }
}

function suggestion(path: string, key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = levenshtein(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  // Close enough to be a slip of the keyboard: about a third of the word, at least two edits.
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)))
    return `; did you mean ${join(path, best)}?`;
  return known.length > 0 ? ` (known: ${known.join(', ')})` : '';
}

/**
 * Edit distance (insertions, deletions, substitutions). Written here rather than imported: a dozen
 * lines, run only on a refused configuration over a few dozen short keys.
 */
export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * An environment variable's text as a value of its schema (a number, true/false, a list); left as text when it does not
 * convert, so the check reports it.
 */
export function fromEnv(schema: TSchema, raw: string): unknown {
  const node = envForm(schema as Node);
  const text = raw.trim();
  if (node.type === 'integer') return /^\d+$/.test(text) ? Number(text) : raw;
  if (node.type === 'number') return text !== '' && Number.isFinite(Number(text)) ? Number(text) : raw;
  if (node.type === 'boolean') {
    const lower = text.toLowerCase();
    return lower === '1' || lower === 'true' ? true : lower === '0' || lower === 'false' ? false : raw;
  }
  if (node.type === 'array')
    return raw
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
  if (node.enum) return node.enum.includes(text.toLowerCase()) ? text.toLowerCase() : raw;
  return raw;
}

/** The part of a setting's schema a variable can express: a text, not an object or null. */
export function envForm(node: Node): Node {
  if (!node.anyOf) return node;
  const simple = node.anyOf.filter((b) => b.type !== 'object' && b.type !== 'null');
  return simple.length === 1 ? simple[0]! : { anyOf: simple };
}

/** The schema of the key at a dotted path ("queue.concurrency"). */
export function schemaAt(schema: TSchema, path: string): TSchema {
  let node = schema as Node;
  for (const key of path.split('.')) {
    node =
      (node.properties?.[key] as Node | undefined) ??
      (node.anyOf?.find((b) => b.properties?.[key]) as Node).properties![key]!;
  }
  return node as TSchema;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
