// Loads a ClipTokenizer from a diffusers/optimum model folder's `tokenizer/` or `tokenizer_2/`
// (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json; docs/diffusion.md, "Model folder layout").
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { parseMerges } from './bpe.ts';
import { CLIP_MAX_LENGTH, ClipTokenizer, type ClipTokenizerOptions } from './clip-tokenizer.ts';

/** A tokenizer file is missing or malformed. `file` is named from the folder, e.g. "tokenizer/merges.txt". */
export class TokenizerLoadError extends Error {
  constructor(
    readonly file: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file} ${problem}`, options);
    this.name = 'TokenizerLoadError';
  }
}

type Json = Record<string, unknown>;
const SPECIAL_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const;
type SpecialKey = (typeof SPECIAL_KEYS)[number];
// transformers writes VERY_LARGE_INTEGER (int(1e30)) when a tokenizer has no length of its own.
const UNSET_MAX_LENGTH = 1e20;

/**
 * @param folder the tokenizer folder itself, e.g. `<model>/tokenizer_2`; error messages name files
 *   relative to its parent ("tokenizer_2/vocab.json").
 */
export async function loadClipTokenizer(folder: string): Promise<ClipTokenizer> {
  const name = (file: string) => `${basename(folder)}/${file}`;
  const vocab = parseVocab(await readJson(folder, 'vocab.json', name), name('vocab.json'));
  const mergesText = await readText(folder, 'merges.txt', name);
  if (mergesText === undefined) throw new TokenizerLoadError(name('merges.txt'), 'is missing');
  if (mergesText.trim() === '') throw new TokenizerLoadError(name('merges.txt'), 'is empty');
  const merges = attempt(name('merges.txt'), () => parseMerges(mergesText));

  const config = await readJson(folder, 'tokenizer_config.json', name);
  const map = await readJson(folder, 'special_tokens_map.json', name);
  if (config === undefined && map === undefined) {
    throw new TokenizerLoadError(
      name('tokenizer_config.json'),
      `is missing, and so is ${name('special_tokens_map.json')}: the pad token (which differs by model) is unknown`,
    );
  }
  const options: ClipTokenizerOptions = {
    vocab,
    merges,
    ...specialTokens(config, map, name),
    maxLength: maxLength(config, name('tokenizer_config.json')),
    addedTokens: addedTokens(config, name('tokenizer_config.json')),
  };
  // A special token without an id is a vocabulary problem (or an added_tokens_decoder one).
  return attempt(name('vocab.json'), () => new ClipTokenizer(options));
}

/**
 * Special tokens as transformers' `_from_pretrained` resolves them: when tokenizer_config.json has
 * `added_tokens_decoder` (transformers ≥ 4.34) its own values count; otherwise (legacy files)
 * special_tokens_map.json overrides tokenizer_config.json. Each value is a string or an AddedToken
 * object `{ "content": "!", ... }`; both occur in published SD folders.
 */
function specialTokens(config: Json | undefined, map: Json | undefined, name: (file: string) => string) {
  const layers: Array<[Json | undefined, string]> =
    config?.added_tokens_decoder !== undefined
      ? [
          [config, 'tokenizer_config.json'],
          [map, 'special_tokens_map.json'],
        ]
      : [
          [map, 'special_tokens_map.json'],
          [config, 'tokenizer_config.json'],
        ];
  const tokens: Partial<Record<SpecialKey, string>> = {};
  for (const key of SPECIAL_KEYS) {
    for (const [json, file] of layers) {
      const content = tokenContent(json?.[key], () => name(file), key);
      if (content !== undefined) {
        tokens[key] = content;
        break;
      }
    }
  }
  return {
    bosToken: tokens.bos_token,
    eosToken: tokens.eos_token,
    padToken: tokens.pad_token,
    unkToken: tokens.unk_token,
  };
}

function tokenContent(value: unknown, file: () => string, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as Json).content === 'string')
    return (value as Json).content as string;
  throw new TokenizerLoadError(file(), `has a ${key} that is neither a string nor an object with a "content" string`);
}

function maxLength(config: Json | undefined, file: string): number {
  const value = config?.model_max_length;
  if (value === undefined || value === null || (typeof value === 'number' && value >= UNSET_MAX_LENGTH))
    return CLIP_MAX_LENGTH;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 2) {
    throw new TokenizerLoadError(
      file,
      `has a model_max_length that is not an integer of at least 2: ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** `added_tokens_decoder`: { "49406": { "content": "<|startoftext|>", "special": true, ... }, ... }. */
function addedTokens(config: Json | undefined, file: string): Map<number, string> {
  const decoder = config?.added_tokens_decoder;
  const added = new Map<number, string>();
  if (decoder === undefined || decoder === null) return added;
  if (typeof decoder !== 'object' || Array.isArray(decoder)) {
    throw new TokenizerLoadError(file, 'has an added_tokens_decoder that is not an object');
  }
  for (const [key, value] of Object.entries(decoder as Json)) {
    const id = Number(key);
    const content = tokenContent(value, () => file, `added_tokens_decoder entry ${JSON.stringify(key)}`);
    if (!/^\d+$/u.test(key) || !Number.isSafeInteger(id) || content === undefined) {
      throw new TokenizerLoadError(
        file,
        `has an added_tokens_decoder entry ${JSON.stringify(key)} that is not an id with content`,
      );
    }
    added.set(id, content);
  }
  return added;
}

function parseVocab(json: Json | undefined, file: string): Record<string, number> {
  if (json === undefined) throw new TokenizerLoadError(file, 'is missing');
  for (const [token, id] of Object.entries(json)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new TokenizerLoadError(file, `maps ${JSON.stringify(token)} to ${JSON.stringify(id)}, not a token id`);
    }
  }
  return json as Record<string, number>;
}

/** The file's text, or undefined when it does not exist. */
async function readText(folder: string, file: string, name: (file: string) => string): Promise<string | undefined> {
  try {
    return await readFile(join(folder, file), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenizerLoadError(name(file), `cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`, {
      cause: error,
    });
  }
}

/** The file parsed as a JSON object, or undefined when it does not exist. */
async function readJson(folder: string, file: string, name: (file: string) => string): Promise<Json | undefined> {
  const text = await readText(folder, file, name);
  if (text === undefined) return undefined;
  const json = attempt(name(file), () => JSON.parse(text) as unknown, 'is not valid JSON');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TokenizerLoadError(name(file), 'is not a JSON object');
  }
  return json as Json;
}

/** Runs `fn`, turning what it throws into a TokenizerLoadError that names `file`. */
function attempt<T>(file: string, fn: () => T, problem?: string): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TokenizerLoadError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new TokenizerLoadError(file, problem ? `${problem}: ${detail}` : `is malformed: ${detail}`, { cause: error });
  }
}
