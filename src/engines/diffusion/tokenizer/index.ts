// Public face of the CLIP tokenizer used by the diffusion engine's text encoders.
// Other folders import from here, not from the files behind it.
export { CLIP_MERGES_KEPT, parseMerges } from './bpe.ts';
export {
  CLIP_BOS_TOKEN_ID,
  CLIP_EOS_TOKEN_ID,
  CLIP_MAX_LENGTH,
  type ClipEncoding,
  ClipTokenizer,
  type ClipTokenizerOptions,
} from './clip-tokenizer.ts';
export { buildClipVocab } from './clip-vocab.ts';
export { loadClipTokenizer, TokenizerLoadError } from './load.ts';
