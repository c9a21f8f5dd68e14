/**
 * The schemas of the OpenAPI document (src/http/openapi.ts): request bodies generated from the
 * FAMILIES tables, so the document and validation cannot disagree, and the response, annotation,
 * stream and error shapes of wire.ts, sse.ts, annotations.ts and errors.ts.
 */
import { HARM_CATEGORIES } from '../contract/annotations.ts';
import {
  FAMILIES,
  type Family,
  FAMILY_IDS,
  type FamilyId,
  type ParamSpec,
  type ParamTable,
} from '../contract/families.ts';

export type Schema = Record<string, unknown>;
export type ParamOperation = 'generation' | 'submit' | 'edit';

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** Words for each wire parameter; the values, limits and defaults come from FAMILIES. */
const DESCRIPTIONS: Record<string, string> = {
  prompt: 'What the image should show.',
  model:
    'The deployment name. Required on the v1 and OpenAI paths and on /openai/images/edits; ignored where the URL names the deployment.',
  user: 'An identifier of the end user, for abuse monitoring.',
  seed: 'easel extension: the same request with the same seed gives the same bytes. Without it, a seed is derived from the request.',
  n: 'How many images.',
  size: 'Width x height in pixels.',
  quality: 'Image quality.',
  style: 'DALL-E 3 style: vivid or natural.',
  response_format: 'url: a signed link valid 24 hours; b64_json: the image inline.',
  output_format: 'Encoding of the returned images.',
  output_compression: 'Compression level for jpeg and webp (0-100); png takes only 100.',
  background: 'transparent needs output_format png or webp.',
  moderation: 'Strictness of the content filter.',
  stream: 'Answer with server-sent events (text/event-stream) instead of JSON.',
  partial_images: 'With stream: how many partial images to send before each final one.',
  input_fidelity: 'How closely an edit keeps the input image.',
  strength:
    'easel extension: how much of the picture may change on an edit (diffusion engines); default 0.75 without a mask, 1 with one.',
};

/** One FAMILIES parameter as a JSON Schema (OpenAPI 3.1 dialect). */
export function paramSchema(name: string, spec: ParamSpec): Schema {
  const schema: Schema = {};
  switch (spec.kind) {
    case 'string':
      Object.assign(schema, { type: 'string' });
      if (spec.required) schema.minLength = 1;
      if (spec.maxLength !== undefined) schema.maxLength = spec.maxLength;
      break;
    case 'enum':
      Object.assign(schema, { type: 'string', enum: [...spec.values] });
      break;
    case 'int':
      Object.assign(schema, { type: 'integer', minimum: spec.min, maximum: spec.max });
      break;
    case 'number':
      Object.assign(schema, { type: 'number', maximum: spec.max });
      if (spec.exclusiveMin) schema.exclusiveMinimum = spec.min;
      else schema.minimum = spec.min;
      break;
    case 'bool':
      Object.assign(schema, { type: 'boolean' });
      break;
  }
  if ('default' in spec && spec.default !== undefined) schema.default = spec.default;
  if (DESCRIPTIONS[name]) schema.description = DESCRIPTIONS[name];
  if (spec.extension) schema['x-easel-extension'] = true;
  return schema;
}

/** The components.schemas name of a family's request body for an operation. */
export function requestSchemaName(family: FamilyId, operation: ParamOperation): string {
  const id = { 'dall-e-2': 'DallE2', 'dall-e-3': 'DallE3', 'gpt-image-1': 'GptImage1' }[family];
  return `${id}${{ generation: 'Generation', submit: 'Submit', edit: 'Edit' }[operation]}Request`;
}

/** The families that have an operation, in FAMILY_IDS order. */
export function familiesWith(operation: ParamOperation): Family[] {
  return FAMILY_IDS.map((id) => FAMILIES[id]).filter((family) => family[operation] !== null);
}

/** A request body that uses every default: the schema's example, and what the tests send. */
export function defaultsExample(table: ParamTable): Record<string, string | number | boolean> {
  const example: Record<string, string | number | boolean> = {};
  for (const [name, spec] of Object.entries(table)) {
    if (spec.kind === 'string' && spec.required) example[name] = 'A lighthouse at dawn, watercolor';
    else if ('default' in spec && spec.default !== undefined) example[name] = spec.default;
  }
  return example;
}

const binary: Schema = { type: 'string', format: 'binary', contentMediaType: 'application/octet-stream' };

function requestSchema(family: Family, operation: ParamOperation): Schema {
  const table = family[operation]!;
  const properties: Record<string, Schema> = {};
  for (const [name, spec] of Object.entries(table)) properties[name] = paramSchema(name, spec);
  const required = Object.entries(table)
    .filter(([, spec]) => spec.kind === 'string' && spec.required)
    .map(([name]) => name);
  if (operation === 'edit') {
    properties.image = { ...binary, description: 'The image to edit (PNG, JPEG or WebP), or its base64 text.' };
    properties['image[]'] = {
      type: 'array',
      maxItems: family.maxEditImages,
      items: binary,
      description: `Up to ${family.maxEditImages} images, as repeated image[] parts; use this or image.`,
    };
    properties.mask = {
      ...binary,
      description: 'PNG with an alpha channel, the size of the first image: alpha 0 marks where to edit.',
    };
  }
  const where = operation === 'edit' ? 'multipart/form-data' : 'JSON';
  return {
    title: `${family.id} ${operation}`,
    description:
      `The ${family.id} ${operation} body (${where}). The deployment's model decides which body applies; ` +
      `on Azure routes ${family.id} needs api-version ${family.minApiVersion} or later.` +
      (operation === 'edit' ? ' Send image or image[] (one is required).' : ''),
    type: 'object',
    properties,
    required,
    additionalProperties: false,
    examples: [defaultsExample(table)],
  };
}

const severity: Schema = {
  type: 'object',
  required: ['filtered', 'severity'],
  properties: { filtered: { type: 'boolean' }, severity: { type: 'string', enum: ['safe', 'low', 'medium', 'high'] } },
};
const detection: Schema = {
  type: 'object',
  required: ['filtered', 'detected'],
  properties: { filtered: { type: 'boolean' }, detected: { type: 'boolean' } },
};
const categories = Object.fromEntries(HARM_CATEGORIES.map((c) => [c, ref('SeverityResult')]));
const filterError: Schema = { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } };

const gptImageFields: Schema = {
  background: { type: 'string', enum: ['transparent', 'opaque'] },
  output_format: { type: 'string', enum: ['png', 'jpeg', 'webp'] },
  quality: { type: 'string', description: 'The quality used (gpt-image-1: low, medium or high).' },
  size: { type: 'string', description: 'The size of the images, e.g. 1024x1024.' },
};

function streamEvent(type: string, extra: Record<string, Schema>): Schema {
  return {
    type: 'object',
    required: ['type', 'b64_json', 'created_at'],
    properties: {
      type: { const: type },
      b64_json: { type: 'string' },
      created_at: { type: 'integer' },
      ...gptImageFields,
      ...extra,
    },
  };
}

/** components.schemas: every request body, then the shapes of answers. */
export function componentSchemas(): Record<string, Schema> {
  const schemas: Record<string, Schema> = {};
  for (const operation of ['generation', 'submit', 'edit'] as const) {
    for (const family of familiesWith(operation))
      schemas[requestSchemaName(family.id, operation)] = requestSchema(family, operation);
  }
  const partial = { partial_image_index: { type: 'integer', minimum: 0 } };
  const completed = { usage: ref('Usage') };
  return {
    ...schemas,
    SeverityResult: severity,
    DetectionResult: detection,
    ContentFilterResults: {
      type: 'object',
      description: 'Per generated image (DALL-E 3): the four harm categories.',
      properties: {
        ...categories,
        error: filterError,
        image_filter: {
          type: 'object',
          description: 'Present when the image classifier did not look at the image (a placeholder picture): why.',
          'x-easel-extension': true,
          properties: { ran: { type: 'boolean', enum: [false] }, reason: { type: 'string' } },
        },
      },
    },
    PromptFilterResults: {
      type: 'object',
      description: 'About the prompt (DALL-E 3): the four categories, profanity, jailbreak and custom blocklists.',
      properties: {
        ...categories,
        profanity: ref('DetectionResult'),
        jailbreak: ref('DetectionResult'),
        custom_blocklists: {
          type: 'object',
          properties: {
            filtered: { type: 'boolean' },
            details: {
              type: 'array',
              items: { type: 'object', properties: { id: { type: 'string' }, filtered: { type: 'boolean' } } },
            },
          },
        },
        error: filterError,
      },
    },
    Usage: {
      type: 'object',
      description: "gpt-image-1's token usage, estimated from OpenAI's published table.",
      required: ['input_tokens', 'input_tokens_details', 'output_tokens', 'total_tokens'],
      properties: {
        input_tokens: { type: 'integer' },
        input_tokens_details: {
          type: 'object',
          properties: { text_tokens: { type: 'integer' }, image_tokens: { type: 'integer' } },
        },
        output_tokens: { type: 'integer' },
        total_tokens: { type: 'integer' },
      },
    },
    ImageItem: {
      type: 'object',
      description: 'One image: url or b64_json. DALL-E 3 adds revised_prompt and the filter annotations.',
      properties: {
        url: { type: 'string', format: 'uri', description: 'A signed link, valid 24 hours; no key needed.' },
        b64_json: { type: 'string', description: 'The image, base64 (always, for gpt-image-1).' },
        revised_prompt: { type: 'string' },
        content_filter_results: ref('ContentFilterResults'),
        prompt_filter_results: ref('PromptFilterResults'),
      },
    },
    ImagesResponse: {
      type: 'object',
      required: ['created', 'data'],
      properties: {
        created: { type: 'integer', description: 'Unix seconds.' },
        data: { type: 'array', items: ref('ImageItem') },
        ...gptImageFields,
        usage: ref('Usage'),
      },
      description: 'background, output_format, quality, size and usage: gpt-image-1 only.',
    },
    ImageStreamEvent: {
      description:
        'One server-sent event of a stream: `event: <type>` then `data: <this object as JSON>`. ' +
        'Up to partial_images partial_image events per image, then one completed per image; a failure after the stream opened is an error event.',
      oneOf: [
        streamEvent('image_generation.partial_image', partial),
        streamEvent('image_generation.completed', completed),
        streamEvent('image_edit.partial_image', partial),
        streamEvent('image_edit.completed', completed),
        {
          type: 'object',
          required: ['type', 'error'],
          properties: { type: { const: 'error' }, error: ref('Error') },
        },
      ],
    },
    OperationSubmitted: {
      type: 'object',
      required: ['id', 'status'],
      properties: { id: { type: 'string' }, status: ref('OperationStatus'), created: { type: 'integer' } },
    },
    OperationStatus: { type: 'string', enum: ['notRunning', 'running', 'succeeded', 'failed', 'canceled', 'deleted'] },
    OperationError: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    Operation: {
      type: 'object',
      description: 'A DALL-E 2 operation: notRunning, running, then succeeded, failed or canceled.',
      required: ['id', 'created', 'status'],
      properties: {
        id: { type: 'string' },
        created: { type: 'integer' },
        expires: { type: 'integer', description: 'Unix seconds when the operation and its images are deleted.' },
        status: ref('OperationStatus'),
        result: {
          type: 'object',
          properties: {
            created: { type: 'integer' },
            data: {
              type: 'array',
              items: {
                type: 'object',
                properties: { url: { type: 'string', format: 'uri' }, error: ref('OperationError') },
              },
            },
          },
        },
        error: ref('OperationError'),
      },
    },
    Error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable code, e.g. invalid_parameter, DeploymentNotFound, "401", "429".' },
        message: { type: 'string' },
        param: { type: ['string', 'null'] },
        type: { type: ['string', 'null'] },
        inner_error: {
          type: 'object',
          description: 'On content_policy_violation: ResponsibleAIPolicyViolation with the prompt filter results.',
          properties: {
            code: { type: 'string' },
            content_filter_results: ref('PromptFilterResults'),
            revised_prompt: { type: 'string' },
          },
        },
      },
    },
    ErrorResponse: {
      type: 'object',
      required: ['error'],
      properties: { error: ref('Error') },
      description: "Azure's error envelope.",
    },
  };
}
