// Public face of the CLIP tokenizer used by the diffusion engine's text encoders.
// Other folders import from here, not from the files behind it.
export {
  ClipTokenizer,
  CLIP_BOS_TOKEN_ID,
  CLIP_EOS_TOKEN_ID,
  CLIP_MAX_LENGTH,
  type ClipEncoding,
  type ClipTokenizerOptions,
} from './clip-tokenizer.ts';
export { CLIP_MERGES_KEPT, parseMerges } from './bpe.ts';
export { loadClipTokenizer, TokenizerLoadError } from './load.ts';
export { buildClipVocab } from './clip-vocab.ts';
