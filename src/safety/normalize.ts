/**
 * Prompt text → lowercase word tokens, seeing through the usual evasions: Unicode look-alikes,
 * letter substitutions (0→o, 4→a, @→a, $→s …), punctuation or spaces inside a word ("k.i.l.l",
 * "k i l l"), masked letters ("f*ck", "tr*nnies": one or two asterisks inside a word are tried as
 * letters, vowels first, until the word reads as a known term), stretched letters ("kiiill") and
 * mixed case. Every step is one pass over the text with no backtracking regular expression, and
 * masked-letter guesses have a fixed budget per prompt, so the cost is linear in the prompt's length.
 *
 * The look-alike table is written by hand rather than taken from `unhomoglyph` or `confusables`
 * (both on npm): those fold to Unicode's confusable *skeletons* (digit 1 and capital I both become
 * "l", "m" can become "rn"), which suit comparing two strings but not recovering plain lowercase
 * words to look up; NFKC already folds full-width and compatibility forms, and the scripts left
 * that matter for Latin look-alikes fit in this short, auditable table.
 */

/** Cyrillic and Greek letters that look like Latin ones (after lowercasing). */
const CONFUSABLES: Record<string, string> = {
  а: 'a',
  в: 'b',
  с: 'c',
  д: 'd',
  е: 'e',
  ё: 'e',
  һ: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  ԛ: 'q',
  г: 'r',
  ѕ: 's',
  т: 't',
  у: 'y',
  ү: 'y',
  х: 'x',
  ш: 'w',
  ԝ: 'w',
  ь: 'b',
  п: 'n',
  и: 'u',
  л: 'n',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  γ: 'y',
  ω: 'w',
  μ: 'u',
  ς: 's',
  σ: 'o',
  ϲ: 'c',
  ϳ: 'j',
  // Latin letters with marks that NFKC keeps: the bare letter is what a reader sees.
  ı: 'i',
  ł: 'l',
  ø: 'o',
  đ: 'd',
  ħ: 'h',
  ŀ: 'l',
};

/** Digits and symbols read as letters, but only inside a word that has letters ("h4te", not "1024"). */
const LEET: Record<string, string> = {
  '0': 'o',
  '1': 'i',
  '3': 'e',
  '4': 'a',
  '5': 's',
  '7': 't',
  '8': 'b',
  '9': 'g',
  '@': 'a',
  $: 's',
  '!': 'i',
  '|': 'i',
  '+': 't',
  '€': 'e',
  '£': 'l',
};

const LETTER = /\p{L}/u;
const MARK = /\p{M}/u;

/** Longest raw word looked at; anything longer is cut (no real word is this long). */
const MAX_WORD = 64;

/**
 * Split a prompt into tokens. `isTerm(joined)` says whether a word written with inner punctuation
 * ("ki-ll", "s.e.x") should be read joined; otherwise its pieces are separate words ("self-harm" →
 * "self", "harm").
 */
export function tokenize(prompt: string, isTerm: (word: string) => boolean = () => false): string[] {
  // NFKD then dropping combining marks turns "é" into "e" and strips zalgo stacks; NFKC first folds
  // full-width letters, ligatures and mathematical alphanumerics to plain ones.
  const text = prompt.normalize('NFKC').normalize('NFKD').toLowerCase();
  const tokens: string[] = [];
  let word = '';
  // How many masked-letter guesses ("f*ck") this prompt may still try: a fixed budget keeps the
  // whole pass linear however many masked words a prompt has.
  const budget = { guesses: MASK_BUDGET };
  const flush = () => {
    if (word !== '') tokens.push(...readWord(word, isTerm, budget));
    word = '';
  };
  for (const ch of text) {
    if (MARK.test(ch)) continue;
    const code = ch.codePointAt(0)!;
    // Whitespace, control and format characters (zero-width joiners included) end a word, except
    // that zero-width characters inside a word are simply dropped.
    if (code === 0x200b || code === 0x200c || code === 0x200d || code === 0x2060 || code === 0xfeff || code === 0xad)
      continue;
    if (/\s/u.test(ch) || code < 0x20 || (code >= 0x7f && code < 0xa0)) {
      flush();
      continue;
    }
    if (word.length < MAX_WORD) word += CONFUSABLES[ch] ?? ch;
  }
  flush();
  return joinSpacedLetters(tokens, isTerm);
}

/** One whitespace-delimited word → its tokens. */
function readWord(raw: string, isTerm: (word: string) => boolean, budget = { guesses: MASK_BUDGET }): string[] {
  const hasLetter = LETTER.test(raw);
  const chars = [...raw];
  // Pieces split at punctuation, after reading digits and symbols as letters inside lettered words.
  const pieces: string[] = [];
  let piece = '';
  const push = () => {
    if (piece) pieces.push(...unmask(piece, isTerm, budget));
    piece = '';
  };
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const leet = hasLetter ? LEET[ch] : undefined;
    // A symbol counts as a letter only between letters or digits ("sh!t", "@ss"), not as a word's
    // trailing punctuation ("stop!").
    const symbolOk =
      leet !== undefined &&
      (/[0-9]/.test(ch) || isWordChar(chars[i + 1]) || (piece !== '' && isWordChar(chars[i + 1])));
    if (leet !== undefined && symbolOk) piece += leet;
    else if (LETTER.test(ch) || /[0-9]/.test(ch)) piece += ch;
    // An asterisk after a letter and before a letter (or another asterisk) masks a letter: "f*ck".
    else if (ch === MASK && piece !== '' && (isWordChar(chars[i + 1]) || chars[i + 1] === MASK)) piece += MASK;
    else push();
  }
  push();
  if (pieces.length > 1) {
    const joined = pieces.join('');
    // "k.i.l.l": every piece one letter → one word; "ki-ll": read joined when that is a known term.
    if (pieces.every((p) => p.length === 1) || isTerm(squeeze(joined))) return [squeeze(joined)];
  }
  return pieces.map(squeeze);
}

const MASK = '*';
/** At most this many masked letters in one word are guessed ("f**k"); 26² spellings at most. */
const MAX_MASKED = 2;
/** Spellings tried per prompt, all masked words together. */
const MASK_BUDGET = 20_000;
// Vowels first, most often masked ones first ("f*ck", "sh*t", "b*tch", "d*mn"), so the usual reading is found first.
const ALPHABET = 'uiaoeybcdfghjklmnpqrstvwxz';

/**
 * A piece with masked letters ("f*ck", "motherf**ker", "tr*nnies") reads as the first spelling,
 * each asterisk one letter, that is a known term; failing that, the asterisks split it like any
 * other punctuation. Trailing asterisks are punctuation ("bold**").
 */
function unmask(piece: string, isTerm: (word: string) => boolean, budget: { guesses: number }): string[] {
  let end = piece.length;
  while (end > 0 && piece[end - 1] === MASK) end--;
  const word = piece.slice(0, end);
  if (!word.includes(MASK)) return word ? [word] : [];
  const masked = [...word].filter((c) => c === MASK).length;
  if (masked <= MAX_MASKED && budget.guesses >= ALPHABET.length ** masked) {
    budget.guesses -= ALPHABET.length ** masked;
    const guess = (prefix: string, rest: string): string | undefined => {
      const at = rest.indexOf(MASK);
      if (at < 0) return isTerm(squeeze(prefix + rest)) ? prefix + rest : undefined;
      for (const letter of ALPHABET) {
        const found = guess(prefix + rest.slice(0, at) + letter, rest.slice(at + 1));
        if (found !== undefined) return found;
      }
      return undefined;
    };
    const found = guess('', word);
    if (found !== undefined) return [found];
  }
  return word.split(MASK).filter((p) => p !== '');
}

function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && (LETTER.test(ch) || /[0-9]/.test(ch) || ch in LEET);
}

/** Runs of three or more of one letter become one ("kiiiill" → "kill"); doubled letters stay. */
function squeeze(word: string): string {
  let out = '';
  let run = 0;
  for (let i = 0; i < word.length; i++) {
    run = i > 0 && word[i] === word[i - 1] ? run + 1 : 1;
    if (run <= 2) out += word[i];
    else if (run === 3) out = out.slice(0, -1);
  }
  // A word of one repeated letter ("kkk", "zzz") is a word of its own, not that letter.
  return out.length === 1 && word.length > 2 ? word : out;
}

/** "k i l l" → "kill": a run of three or more single letters is read as one word. */
function joinSpacedLetters(tokens: string[], isTerm: (word: string) => boolean): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < tokens.length) {
    let j = i;
    while (j < tokens.length && tokens[j]!.length === 1 && LETTER.test(tokens[j]!)) j++;
    const joined = tokens.slice(i, j).join('');
    if (j - i >= 3 || (j - i === 2 && isTerm(joined))) {
      out.push(squeeze(joined));
      i = j;
    } else {
      out.push(tokens[i]!);
      i++;
    }
  }
  return out;
}
