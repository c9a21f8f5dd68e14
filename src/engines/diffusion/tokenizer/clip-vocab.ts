// Builds vocab.json contents for synthetic tokenizers: tiny random test models (docs/diffusion.md, "Tiny test models")
// need a tokenizer whose ids fit their small embedding tables, and no real vocabulary may be shipped.
import { BYTE_TO_UNICODE } from './normalize.ts';

/**
 * The layout of openai CLIP's `SimpleTokenizer` (`clip/simple_tokenizer.py`), which the released
 * vocab.json files follow: the 256 byte characters in bytes_to_unicode order (printable bytes first),
 * the same 256 with `</w>`, one token per merge in rank order, then `<|startoftext|>`, `<|endoftext|>`.
 * With the 48,894 real merges that puts '!' at 0, '!</w>' at 256, BOS at 49406 and EOS at 49407.
 *
 * @param merges merge lines without the header, e.g. `["h e", "l o</w>"]`
 */
export function buildClipVocab(merges: readonly string[]): Record<string, number> {
  const printable = BYTE_TO_UNICODE.filter((ch, byte) => ch === String.fromCharCode(byte));
  const others = BYTE_TO_UNICODE.filter((ch, byte) => ch !== String.fromCharCode(byte));
  const bytes = [...printable, ...others];
  const tokens = [...bytes, ...bytes.map((ch) => `${ch}</w>`), ...merges.map((line) => line.split(' ').join(''))];
  tokens.push('<|startoftext|>', '<|endoftext|>');
  // A merge may repeat an earlier token; like SimpleTokenizer's dict, the later id wins.
  return Object.fromEntries(tokens.map((token, id) => [token, id]));
}
