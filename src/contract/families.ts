/**
 * The three model families as data: which parameters each accepts per operation, their values,
 * limits and defaults. Validation, the playground and the OpenAPI document all read this table, so
 * they cannot disagree. Sources, and where they disagree: docs/azure-api.md, "Request parameters per family".
 */

export type FamilyId = 'dall-e-2' | 'dall-e-3' | 'gpt-image-1';
export const FAMILY_IDS: readonly FamilyId[] = ['dall-e-2', 'dall-e-3', 'gpt-image-1'];

export type ParamSpec = (
  | { kind: 'string'; maxLength?: number; required?: boolean }
  | { kind: 'enum'; values: readonly string[]; default?: string }
  | { kind: 'int'; min: number; max: number; default?: number }
  /** A finite number; `exclusiveMin` makes `min` itself invalid. */
  | { kind: 'number'; min: number; max: number; exclusiveMin?: boolean; default?: number }
  | { kind: 'bool'; default?: boolean }
) & {
  /** easel's own parameter, not Azure's: the OpenAPI document marks it `x-easel-extension`. */
  extension?: true;
};

/** Parameters of one operation (generation or edit) of one family, by wire name. */
export type ParamTable = Readonly<Record<string, ParamSpec>>;

export interface Family {
  id: FamilyId;
  /** Minimum Azure api-version on the deployment routes (older versions answer BadRequest). */
  minApiVersion: string;
  generation: ParamTable;
  /** DALL-E 2's asynchronous `:submit`; null for the other families. */
  submit: ParamTable | null;
  /** null: the family has no edit operation on Azure. */
  edit: ParamTable | null;
  /** How many input images an edit accepts. */
  maxEditImages: number;
  /** DALL-E 3 rewrites prompts and annotates each item with filter results. */
  revisesPrompt: boolean;
  annotatesItems: boolean;
  /** gpt-image-1 always answers with b64_json and reports token usage. */
  alwaysBase64: boolean;
  reportsUsage: boolean;
}

const common = {
  model: { kind: 'string' } as ParamSpec,
  user: { kind: 'string', maxLength: 256 } as ParamSpec,
  /** easel extension: the same request with the same seed gives the same bytes. */
  seed: { kind: 'int', min: 0, max: 2 ** 32 - 1, extension: true } as ParamSpec,
};

/**
 * easel extension on edits: how much of the picture may change (diffusion engines). 1 repaints the
 * edited area from noise; small values keep the input's composition. Default 0.75 without a mask,
 * 1 with one (README, "Diffusion").
 */
const strength: ParamSpec = { kind: 'number', min: 0, max: 1, exclusiveMin: true, extension: true };

const responseFormat: ParamSpec = { kind: 'enum', values: ['url', 'b64_json'], default: 'url' };

const dalle2Generation: ParamTable = {
  ...common,
  prompt: { kind: 'string', maxLength: 1000, required: true },
  // The how-to says 1–10, the REST reference 1–5; easel allows the larger range.
  n: { kind: 'int', min: 1, max: 10, default: 1 },
  size: { kind: 'enum', values: ['256x256', '512x512', '1024x1024'], default: '1024x1024' },
};

const gptImageGeneration: ParamTable = {
  ...common,
  prompt: { kind: 'string', maxLength: 32000, required: true },
  n: { kind: 'int', min: 1, max: 10, default: 1 },
  size: { kind: 'enum', values: ['1024x1024', '1536x1024', '1024x1536', 'auto'], default: 'auto' },
  // Azure's how-to gives `high` as the default quality of gpt-image-1.
  quality: { kind: 'enum', values: ['low', 'medium', 'high', 'auto'], default: 'high' },
  output_format: { kind: 'enum', values: ['png', 'jpeg', 'webp'], default: 'png' },
  output_compression: { kind: 'int', min: 0, max: 100, default: 100 },
  background: { kind: 'enum', values: ['transparent', 'opaque', 'auto'], default: 'auto' },
  moderation: { kind: 'enum', values: ['low', 'auto'], default: 'auto' },
  stream: { kind: 'bool', default: false },
  partial_images: { kind: 'int', min: 0, max: 3, default: 0 },
};

export const FAMILIES: Readonly<Record<FamilyId, Family>> = {
  'dall-e-2': {
    id: 'dall-e-2',
    minApiVersion: '2023-06-01-preview',
    generation: { ...dalle2Generation, response_format: responseFormat },
    // The asynchronous flow has no response_format: its results are always URLs (docs/azure-api.md).
    submit: dalle2Generation,
    // Azure has no DALL-E edits; the OpenAI platform does, and its SDK sends them this way.
    edit: { ...dalle2Generation, response_format: responseFormat, strength },
    maxEditImages: 1,
    revisesPrompt: false,
    annotatesItems: false,
    alwaysBase64: false,
    reportsUsage: false,
  },
  'dall-e-3': {
    id: 'dall-e-3',
    minApiVersion: '2023-12-01-preview',
    generation: {
      ...common,
      prompt: { kind: 'string', maxLength: 4000, required: true },
      n: { kind: 'int', min: 1, max: 1, default: 1 },
      size: { kind: 'enum', values: ['1024x1024', '1792x1024', '1024x1792'], default: '1024x1024' },
      quality: { kind: 'enum', values: ['standard', 'hd'], default: 'standard' },
      style: { kind: 'enum', values: ['vivid', 'natural'], default: 'vivid' },
      response_format: responseFormat,
    },
    submit: null,
    edit: null,
    maxEditImages: 0,
    revisesPrompt: true,
    annotatesItems: true,
    alwaysBase64: false,
    reportsUsage: false,
  },
  'gpt-image-1': {
    id: 'gpt-image-1',
    minApiVersion: '2025-04-01-preview',
    generation: gptImageGeneration,
    submit: null,
    edit: {
      ...gptImageGeneration,
      // `auto` keeps the size of the input image (see docs/deviations.md).
      quality: { kind: 'enum', values: ['standard', 'low', 'medium', 'high', 'auto'], default: 'high' },
      input_fidelity: { kind: 'enum', values: ['high', 'low'], default: 'low' },
      strength,
    },
    maxEditImages: 16,
    revisesPrompt: false,
    annotatesItems: false,
    alwaysBase64: true,
    reportsUsage: true,
  },
};

/** Every parameter name any family accepts on an operation; others are unknown parameters. */
export function knownParams(op: 'generation' | 'submit' | 'edit'): ReadonlySet<string> {
  const names = new Set<string>();
  for (const family of Object.values(FAMILIES)) {
    for (const name of Object.keys(family.generation)) names.add(name);
    if (op === 'edit' && family.edit) for (const name of Object.keys(family.edit)) names.add(name);
  }
  if (op === 'edit') names.add('image').add('image[]').add('mask');
  return names;
}

/** Accept model names as deployments are usually configured ("dall-e-3", "dalle3", "gpt-image-1-mini"). */
export function familyOf(model: string): FamilyId | undefined {
  const m = model.toLowerCase().replace(/[\s_]/g, '-');
  if (m === 'dall-e-2' || m === 'dalle2' || m === 'dalle-2') return 'dall-e-2';
  if (m === 'dall-e-3' || m === 'dalle3' || m === 'dalle-3') return 'dall-e-3';
  if (m.startsWith('gpt-image-1')) return 'gpt-image-1';
  return undefined;
}
