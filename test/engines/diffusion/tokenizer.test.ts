import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  buildClipVocab,
  CLIP_BOS_TOKEN_ID,
  CLIP_EOS_TOKEN_ID,
  CLIP_MERGES_KEPT,
  ClipTokenizer,
  parseMerges,
} from '../../../src/engines/diffusion/tokenizer/index.ts';
import { preTokenize } from '../../../src/engines/diffusion/tokenizer/normalize.ts';

// Ids follow the CLIP layout (buildClipVocab): printable ASCII c has id c - 33, its `</w>` form
// c - 33 + 256, and merge k has id 512 + k. So 'h' is 71, '!' 0, '!</w>' 256, ',</w>' 267.
const MERGES = [
  'l o</w>', // 512 lo</w>
  'h e', // 513 he
  'l lo</w>', // 514 llo</w>
  'he llo</w>', // 515 hello</w>
  'e l', // 516 el: ranks after "l o</w>", so "elo" does not start with it
  'b c', // 517 bc
  'a b', // 518 ab: ranks after "b c", so "abcd" never forms it
  'w o', // 519
  'r l', // 520
  'wo rl', // 521
  'worl d</w>', // 522 world</w>
  "' s</w>", // 523 's</w>
];
const HELLO = 515;
const WORLD = 522;
const BOS = 524;
const EOS = 525;
const mergesTxt = (lines: string[]) => ['#version: 0.2', ...lines].join('\n') + '\n';

function tokenizer(options: { padToken?: string; vocab?: Record<string, number> } = {}): ClipTokenizer {
  return new ClipTokenizer({
    vocab: options.vocab ?? buildClipVocab(MERGES),
    merges: parseMerges(mergesTxt(MERGES)),
    padToken: options.padToken,
  });
}
const sd1 = tokenizer();
const sd2 = tokenizer({ padToken: '!' });
const head = (prompt: string, n: number) => sd1.encode(prompt).inputIds.slice(0, n);

test('simple words become BOS, one id per merged word, EOS', () => {
  assert.deepEqual(sd1.tokenize('hello world'), ['hello</w>', 'world</w>']);
  assert.deepEqual(head('hello world', 4), [BOS, HELLO, WORLD, EOS]);
});

test('merges apply in rank order, not left to right', () => {
  // "b c" (rank 5) beats "a b" (rank 6) although "a b" comes first in the word.
  assert.deepEqual(sd1.tokenize('abcd'), ['a', 'bc', 'd</w>']);
  // "l o</w>" (rank 0) beats "e l" (rank 4); afterwards "e lo</w>" has no rank.
  assert.deepEqual(sd1.tokenize('elo'), ['e', 'lo</w>']);
  assert.deepEqual(head('abcd elo', 6), [BOS, 64, 517, 67 + 256, 68, 512]);
});

test('a one-letter word is its </w> form', () => {
  assert.deepEqual(head('a', 3), [BOS, 64 + 256, EOS]);
});

test('punctuation splits from words and a run of punctuation stays one piece', () => {
  assert.deepEqual(preTokenize('hello, world!! a...b?'), ['hello', ',', 'world', '!!', 'a', '...', 'b', '?']);
  assert.deepEqual(head('hello, world!!', 7), [BOS, HELLO, 267, WORLD, 0, 256, EOS]);
});

test("contractions 's 't 're 've 'm 'll 'd are their own pieces", () => {
  assert.deepEqual(preTokenize("it's don't you're we've i'm we'll i'd"), [
    'it',
    "'s",
    'don',
    "'t",
    'you',
    "'re",
    'we',
    "'ve",
    'i',
    "'m",
    'we',
    "'ll",
    'i',
    "'d",
  ]);
  assert.deepEqual(sd1.tokenize("IT'S"), ['i', 't</w>', "'s</w>"]);
  assert.deepEqual(head("it's", 5), [BOS, 72, 83 + 256, 523, EOS]);
  // An apostrophe that starts no contraction is punctuation.
  assert.deepEqual(preTokenize("'x"), ["'", 'x']);
});

test('digits are one token each', () => {
  assert.deepEqual(preTokenize('2024 x12'), ['2', '0', '2', '4', 'x', '1', '2']);
  assert.deepEqual(head('2024', 6), [BOS, 17 + 256, 15 + 256, 17 + 256, 19 + 256, EOS]);
});

test('non-ASCII text becomes byte-level tokens of its UTF-8 bytes', () => {
  // é = C3 A9 → 'Ã' (id 127) '©</w>' (102 + 256); 😀 = F0 9F 98 80 → ids 172 253 246 222+256.
  assert.deepEqual(sd1.tokenize('é'), ['Ã', '©</w>']);
  assert.deepEqual(head('é', 4), [BOS, 127, 358, EOS]);
  assert.deepEqual(head('😀', 6), [BOS, 172, 253, 246, 478, EOS]);
  // NFC: a decomposed é (e + U+0301) encodes as the composed one.
  assert.deepEqual(head('e\u0301', 4), [BOS, 127, 358, EOS]);
});

test('CJK ideographs are padded with spaces, kana are not', () => {
  // 猫 = E7 8C AB; without the padding "猫cat" would be one \p{L}+ piece.
  assert.deepEqual(sd1.tokenize('猫cat'), ['ç', 'Į', '«</w>', 'c', 'a', 't</w>']);
  assert.deepEqual(preTokenize('猫cat'), ['猫cat']);
  assert.equal(sd1.tokenize('ねこcat').filter((token) => token.endsWith('</w>')).length, 1);
});

test('control characters and U+FFFD are dropped; tab and newline are spaces', () => {
  assert.deepEqual(sd1.tokenize('hel\u0000lo\u200b \u0007world\uFFFD'), ['hello</w>', 'world</w>']);
  assert.deepEqual(sd1.tokenize('hello\tworld\n'), ['hello</w>', 'world</w>']);
  // A form feed is a control character (Cc), not whitespace, in BasicTokenizer.
  assert.deepEqual(sd1.tokenize('hel\flo'), ['hello</w>']);
});

test('mixed case is lowercased', () => {
  assert.deepEqual(head('HeLLo WORLD', 4), [BOS, HELLO, WORLD, EOS]);
});

test('runs of whitespace, including no-break and ideographic spaces, collapse', () => {
  assert.deepEqual(head('  hello \t\n  world\u00a0 ', 4), [BOS, HELLO, WORLD, EOS]);
  assert.deepEqual(head('hello\u3000world', 4), [BOS, HELLO, WORLD, EOS]);
});

test('an empty or blank prompt is BOS then EOS', () => {
  for (const prompt of ['', '   ', '\u0000']) {
    const encoding = sd1.encode(prompt);
    assert.deepEqual(encoding.inputIds.slice(0, 3), [BOS, EOS, EOS]);
    assert.equal(encoding.tokenCount, 0);
  }
});

test('a token missing from the vocabulary becomes the <|endoftext|> id', () => {
  const vocab = buildClipVocab(MERGES);
  delete vocab['q</w>'];
  assert.deepEqual(tokenizer({ vocab }).encode('q hello').inputIds.slice(0, 4), [BOS, EOS, HELLO, EOS]);
});

test('the literal <|endoftext|> marker in a prompt is the EOS id', () => {
  assert.deepEqual(head('hello<|endoftext|>world', 5), [BOS, HELLO, EOS, WORLD, EOS]);
});

test('prompts longer than 75 tokens are cut to 77 ids with EOS last and reported', () => {
  const encoding = sd1.encode(Array(100).fill('hello').join(' '));
  assert.deepEqual(encoding.inputIds, [BOS, ...Array(75).fill(HELLO), EOS]);
  assert.deepEqual(encoding.attentionMask, Array(77).fill(1));
  assert.equal(encoding.tokenCount, 100);
  assert.equal(encoding.truncated, true);
  assert.equal(sd1.encode(Array(75).fill('hello').join(' ')).truncated, false);
  assert.equal(sd1.encode(Array(76).fill('hello').join(' ')).truncated, true);
});

test('SD 1.x pads with <|endoftext|>, SD 2.x with ! (id 0); the mask marks the padding', () => {
  const one = sd1.encode('hello');
  assert.deepEqual(one.inputIds, [BOS, HELLO, EOS, ...Array(74).fill(EOS)]);
  assert.deepEqual(one.attentionMask, [1, 1, 1, ...Array(74).fill(0)]);
  assert.equal(one.tokenCount, 1);
  assert.equal(one.truncated, false);
  assert.deepEqual(sd2.encode('hello').inputIds, [BOS, HELLO, EOS, ...Array(74).fill(0)]);
});

test('a ! in the prompt stays text when ! is the pad token (OpenCLIP, diffusers#4153)', () => {
  assert.deepEqual(sd2.encode('hello!').inputIds.slice(0, 5), [BOS, HELLO, 256, EOS, 0]);
});

test('encodeBatch encodes each prompt on its own', () => {
  assert.deepEqual(sd2.encodeBatch(['hello', 'world']), [sd2.encode('hello'), sd2.encode('world')]);
});

test('decode gives back the kept text without special tokens, a space after each piece', () => {
  assert.equal(sd1.decode(sd1.encode('Hello, WORLD! é😀').inputIds), 'hello , world ! é 😀');
});

test('a CLIP-sized vocabulary puts BOS at 49406, EOS at 49407, ! at 0, !</w> at 256', () => {
  const filler = Array.from({ length: CLIP_MERGES_KEPT - MERGES.length }, (_, i) => `Ā${i} Ā`);
  // Lines past the kept count are ignored, as in tokenization_clip.py.
  const kept = [...MERGES, ...filler];
  const base = { vocab: buildClipVocab(kept), merges: parseMerges(mergesTxt([...kept, 'w h', 'h o</w>'])) };
  const clipL = new ClipTokenizer(base);
  const openClip = new ClipTokenizer({ ...base, padToken: '!' });
  assert.deepEqual(
    [clipL.bosTokenId, clipL.eosTokenId, clipL.padTokenId],
    [CLIP_BOS_TOKEN_ID, CLIP_EOS_TOKEN_ID, 49407],
  );
  assert.deepEqual([CLIP_BOS_TOKEN_ID, CLIP_EOS_TOKEN_ID], [49406, 49407]);
  assert.equal(openClip.padTokenId, 0);
  assert.deepEqual(openClip.encode('hello!').inputIds.slice(0, 6), [49406, HELLO, 256, 49407, 0, 0]);
  assert.deepEqual(clipL.tokenize('who'), ['w', 'h', 'o</w>']);
});

test('the merges header line is skipped even when it looks like a merge', () => {
  const vocab = buildClipVocab(['h e']);
  const skipped = new ClipTokenizer({ vocab, merges: parseMerges('h e\nl o</w>\n') });
  assert.deepEqual(skipped.tokenize('he'), ['h', 'e</w>']);
});

test('a special token missing from the vocabulary is a RangeError naming it', () => {
  assert.throws(() => tokenizer({ padToken: '<pad>' }), { name: 'RangeError', message: /pad_token "<pad>"/ });
});
