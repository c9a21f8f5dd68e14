// Text normalisation and pre-tokenisation of the slow HF CLIPTokenizer, as it runs without ftfy
// (transformers `models/clip/tokenization_clip.py` `_tokenize`, which calls
// `BasicTokenizer(strip_accents=False, do_split_on_punc=False)` from `models/bert/tokenization_bert.py`).
// diffusers installs do not pull in ftfy, so this is the path the reference pipelines take.

// BasicTokenizer._clean_text: code point 0, U+FFFD and every "C*" category character are dropped,
// except \t \n \r, which `_is_control` treats as whitespace.
const DROPPED = /(?![\t\n\r])\p{C}|\uFFFD/gu;
// BasicTokenizer._is_whitespace: ' ', \t, \n, \r and category Zs become one ' ' each.
const WHITESPACE = /[\t\n\r\p{Zs}]/gu;
// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks only (not kana or hangul).
const CJK =
  /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/gu;

/**
 * BasicTokenizer.tokenize followed by `" ".join(...)`: clean, pad CJK ideographs with spaces, NFC,
 * split on whitespace, lowercase, rejoin with single spaces. Accents are kept (strip_accents=False).
 * After cleaning, the only whitespace left is ' ', U+2028 and U+2029, which JavaScript's `\s` and
 * Python's `str.split()` both split on.
 */
export function normalizeClipText(text: string): string {
  const cleaned = text.replace(DROPPED, '').replace(WHITESPACE, ' ').replace(CJK, ' $& ');
  return cleaned
    .normalize('NFC')
    .split(/\s+/u)
    .filter((word) => word.length > 0)
    .join(' ')
    .toLowerCase();
}

// tokenization_clip.py `self.pat`. Every alternative is a literal or a single character class with at
// most one `+`, so a match never backtracks into a nested quantifier: matchAll stays linear on long
// prompts. The `u` flag makes \p{L} / \p{N} work and iterates by code point. Input is lowercase already;
// `i` is kept to mirror re.IGNORECASE.
const PRE_TOKENIZE = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;

/** Splits normalised text into the pieces that BPE runs on (words, single digits, punctuation runs). */
export function preTokenize(normalized: string): string[] {
  return Array.from(normalized.matchAll(PRE_TOKENIZE), (match) => match[0]);
}

/**
 * GPT-2 `bytes_to_unicode` (tokenization_clip.py): printable bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to
 * themselves, the other 68 bytes to U+0100 + n in byte order, so no BPE symbol is whitespace or a
 * control character.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return table;
})();

export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((ch, b) => [ch, b]));

const utf8 = new TextEncoder();

/** A piece's UTF-8 bytes written as byte-level characters (every character is one UTF-16 unit). */
export function toByteLevel(piece: string): string {
  let out = '';
  for (const byte of utf8.encode(piece)) out += BYTE_TO_UNICODE[byte];
  return out;
}
