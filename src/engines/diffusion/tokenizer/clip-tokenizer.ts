// The CLIP tokenizer of Stable Diffusion's text encoders, hand-written on purpose: transformers.js and
// @huggingface/tokenizers load `tokenizer.json`, but SD ONNX folders ship the slow-tokenizer files
// (vocab.json + merges.txt), and the algorithm is about 150 lines (docs/diffusion.md, "CLIP tokenizer").
// It follows transformers `models/clip/tokenization_clip.py` (CLIPTokenizer without ftfy), as the
// diffusers pipelines call it: `tokenizer(prompt, padding="max_length", max_length=77, truncation=True)`.
import { bytePairEncode, CLIP_MERGES_KEPT, MergeRanks } from './bpe.ts';
import { normalizeClipText, preTokenize, toByteLevel, UNICODE_TO_BYTE } from './normalize.ts';

/** Token ids of the released CLIP vocabularies (openai CLIP-L, OpenCLIP ViT-H and bigG): 49408 entries. */
export const CLIP_BOS_TOKEN_ID = 49406;
export const CLIP_EOS_TOKEN_ID = 49407;
/** Context length of every CLIP text encoder used by SD 1.x, 2.x and SDXL. */
export const CLIP_MAX_LENGTH = 77;

const START_OF_TEXT = '<|startoftext|>';
const END_OF_TEXT = '<|endoftext|>';
const CACHE_LIMIT = 20_000;
const CACHED_PIECE_MAX_LENGTH = 64;

export interface ClipTokenizerOptions {
  /** vocab.json: token → id. */
  vocab: Readonly<Record<string, number>>;
  /** merges.txt after the header line, as pairs; only the first CLIP_MERGES_KEPT are used. */
  merges: ReadonlyArray<readonly [string, string]>;
  bosToken?: string;
  eosToken?: string;
  /** `<|endoftext|>` for SD 1.x / CLIP-L; `!` (id 0) for SD 2.x, SD-Turbo and SDXL's tokenizer_2. */
  padToken?: string;
  unkToken?: string;
  maxLength?: number;
  /** tokenizer_config.json `added_tokens_decoder` as id → content; these ids win over vocab.json. */
  addedTokens?: ReadonlyMap<number, string>;
}

export interface ClipEncoding {
  /** BOS, up to maxLength - 2 text tokens, EOS, then pad ids: always maxLength long. */
  inputIds: number[];
  /** 1 for BOS, the text tokens and EOS; 0 for padding (HF's attention_mask). */
  attentionMask: number[];
  /** Text tokens the whole prompt produced, before truncation, without BOS and EOS. */
  tokenCount: number;
  /** True when tokenCount exceeded maxLength - 2 and the tail of the prompt was cut. */
  truncated: boolean;
}

export class ClipTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly maxLength: number;
  private readonly ids: Map<string, number>;
  private readonly tokens = new Map<number, string>();
  private readonly ranks: MergeRanks;
  private readonly cache = new Map<string, string[]>();

  /** Throws a RangeError when a special token has no id or maxLength cannot hold BOS and EOS. */
  constructor(options: ClipTokenizerOptions) {
    this.ids = new Map(Object.entries(options.vocab));
    // PreTrainedTokenizer.convert_tokens_to_ids looks in the added tokens before the vocabulary.
    for (const [id, content] of options.addedTokens ?? []) this.ids.set(content, id);
    for (const [token, id] of this.ids) this.tokens.set(id, token);
    this.ranks = new MergeRanks(options.merges.slice(0, CLIP_MERGES_KEPT));
    this.maxLength = options.maxLength ?? CLIP_MAX_LENGTH;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 2) {
      throw new RangeError(`maxLength must be an integer of at least 2, got ${this.maxLength}`);
    }
    this.bosTokenId = this.specialId('bos_token', options.bosToken ?? START_OF_TEXT);
    this.eosTokenId = this.specialId('eos_token', options.eosToken ?? END_OF_TEXT);
    // CLIPTokenizer.__init__ defaults both unk_token and pad_token to "<|endoftext|>".
    this.padTokenId = this.specialId('pad_token', options.padToken ?? END_OF_TEXT);
    this.unkTokenId = this.specialId('unk_token', options.unkToken ?? END_OF_TEXT);
  }

  /**
   * Encodes one prompt to exactly maxLength ids. The pad token is used for padding only: a '!' in the
   * prompt is ordinary text even when '!' is the pad token. HF's slow tokenizer splits such a '!' out as
   * a special token (id 0), which OpenCLIP, the tokenizer SD 2.x and SDXL were trained with, never does
   * (diffusers issue #4153: "! !! !!!" → 0 0 0 … in diffusers, 256 748 995 in open_clip).
   */
  encode(prompt: string): ClipEncoding {
    const textIds = this.tokenize(prompt).map((token) => this.ids.get(token) ?? this.unkTokenId);
    const room = this.maxLength - 2;
    // Truncation cuts the text ids before BOS/EOS are added (build_inputs_with_special_tokens),
    // so EOS always stays last.
    const kept = textIds.slice(0, room);
    const inputIds = [this.bosTokenId, ...kept, this.eosTokenId];
    const attentionMask = inputIds.map(() => 1);
    while (inputIds.length < this.maxLength) {
      inputIds.push(this.padTokenId);
      attentionMask.push(0);
    }
    return { inputIds, attentionMask, tokenCount: textIds.length, truncated: textIds.length > room };
  }

  encodeBatch(prompts: readonly string[]): ClipEncoding[] {
    return prompts.map((prompt) => this.encode(prompt));
  }

  /** The BPE tokens of a prompt (HF `tokenize`): byte-level strings, `</w>` closing each word. */
  tokenize(prompt: string): string[] {
    const tokens: string[] = [];
    for (const piece of preTokenize(normalizeClipText(prompt))) {
      // tokenization_clip.py seeds its cache with the two markers, so they bypass BPE and `</w>`.
      if (piece === START_OF_TEXT || piece === END_OF_TEXT) tokens.push(piece);
      // A loop, not push(...): one long piece can yield more tokens than a call may take arguments.
      else for (const token of this.bpe(toByteLevel(piece))) tokens.push(token);
    }
    return tokens;
  }

  /**
   * Text back from ids, without BOS, EOS, pad and unknown ids (CLIPTokenizer.convert_tokens_to_string:
   * bytes decoded as UTF-8 with replacement, `</w>` read as a space). Lets the engine show the part of a
   * prompt that survived truncation.
   */
  decode(ids: readonly number[]): string {
    const special = new Set([this.bosTokenId, this.eosTokenId, this.padTokenId, this.unkTokenId]);
    const bytes: number[] = [];
    for (const id of ids) {
      const token = special.has(id) ? undefined : this.tokens.get(id);
      for (const ch of token ?? '') {
        const byte = UNICODE_TO_BYTE.get(ch);
        if (byte !== undefined) bytes.push(byte);
      }
    }
    return new TextDecoder().decode(new Uint8Array(bytes)).replaceAll('</w>', ' ').trim();
  }

  private bpe(word: string): string[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const tokens = bytePairEncode(word, this.ranks);
    // HF's cache grows without bound; a server keeps it to short, recurring words and forgets the
    // oldest entries first, so a stream of long unique prompts cannot fill memory.
    if (word.length <= CACHED_PIECE_MAX_LENGTH) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(word, tokens);
    }
    return tokens;
  }

  private specialId(name: string, token: string): number {
    const id = this.ids.get(token);
    if (id === undefined) throw new RangeError(`${name} ${JSON.stringify(token)} has no id in the vocabulary`);
    return id;
  }
}
