import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bytePairEncode, MergeRanks } from '../../../src/engines/diffusion/tokenizer/bpe.ts';
import { buildClipVocab, ClipTokenizer, parseMerges } from '../../../src/engines/diffusion/tokenizer/index.ts';

/** transformers `tokenization_clip.py` `CLIPTokenizer.bpe`, line for line: the O(n²) loop the heap replaces. */
function referenceBpe(token: string, ranks: Map<string, number>): string[] {
  const chars = Array.from(token);
  let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
  if (word.length === 1) return word;
  for (;;) {
    let best: [string, string] | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < word.length; i++) {
      const rank = ranks.get(`${word[i]} ${word[i + 1]}`);
      if (rank !== undefined && rank < bestRank) [bestRank, best] = [rank, [word[i] as string, word[i + 1] as string]];
    }
    if (!best) return word;
    const [first, second] = best;
    const merged: string[] = [];
    for (let i = 0; i < word.length;) {
      const j = word.indexOf(first, i);
      if (j === -1) {
        merged.push(...word.slice(i));
        break;
      }
      merged.push(...word.slice(i, j));
      i = j;
      if (i < word.length - 1 && word[i + 1] === second) {
        merged.push(first + second);
        i += 2;
      } else {
        merged.push(word[i] as string);
        i += 1;
      }
    }
    word = merged;
    if (word.length === 1) return word;
  }
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Merges learned as BPE learns them (each from symbols that exist), then shuffled, so some merges of
 * long symbols outrank the merges that build those symbols. */
function randomMerges(random: () => number, count: number): Array<[string, string]> {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T;
  const inner = ['a', 'b', 'c'];
  const final = inner.map((s) => `${s}</w>`);
  const merges = new Map<string, [string, string]>();
  while (merges.size < count) {
    const pair: [string, string] = [pick(inner), pick([...inner, ...final])];
    if (merges.has(pair.join(' '))) continue;
    merges.set(pair.join(' '), pair);
    (pair[1].endsWith('</w>') ? final : inner).push(pair.join(''));
  }
  const list = [...merges.values()];
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j] as [string, string], list[i] as [string, string]];
  }
  return list;
}

test('the heap BPE gives the same tokens as the transformers loop on 3,000 random words', () => {
  const random = mulberry32(20240607);
  for (let round = 0; round < 30; round++) {
    const merges = randomMerges(random, 40);
    const ranks = new MergeRanks(merges);
    const table = new Map(merges.map((pair, rank) => [pair.join(' '), rank]));
    for (let n = 0; n < 100; n++) {
      const word = Array.from({ length: 1 + Math.floor(random() * 40) }, () => 'abc'[Math.floor(random() * 3)]).join(
        '',
      );
      assert.deepEqual(bytePairEncode(word, ranks), referenceBpe(word, table), `word ${word}`);
    }
  }
});

test('a repeated symbol pair merges left to right without overlap, as in transformers', () => {
  const ranks = new MergeRanks([['a', 'a']]);
  assert.deepEqual(bytePairEncode('aaaaa', ranks), ['aa', 'aa', 'a</w>']);
  // The last letter carries </w>, so "a a</w>" is another pair and stays apart.
  assert.deepEqual(bytePairEncode('aaaa', ranks), ['aa', 'a', 'a</w>']);
});

test('a merge listed twice keeps its later rank', () => {
  const ranks = new MergeRanks([
    ['b', 'c'],
    ['a', 'b'],
    ['b', 'c'],
  ]);
  assert.equal(ranks.rank('b', 'c'), 2);
  assert.deepEqual(bytePairEncode('abc', ranks), ['ab', 'c</w>']);
});

const merges = ['a a', 'aa aa', 'aaaa aaaa'];
const long = new ClipTokenizer({
  vocab: buildClipVocab(merges),
  merges: parseMerges(['#version: 0.2', ...merges].join('\n')),
});

// A quadratic regression would show as these two tests hanging: the timeout is a hang guard, not a speed check.
test('a 100,000-letter word is tokenized, counted exactly and reported as truncated', { timeout: 120_000 }, () => {
  const encoding = long.encode('a'.repeat(100_000));
  // 99,999 inner 'a' pair up into 12,499 'aaaaaaaa' plus 'aaaa', 'aa', 'a'; the last letter is 'a</w>'.
  assert.equal(encoding.tokenCount, 12_503);
  assert.equal(encoding.truncated, true);
  assert.equal(encoding.inputIds.length, 77);
});

test('a 100,000-character mixed prompt and a 100,000-character punctuation run finish', { timeout: 120_000 }, () => {
  const random = mulberry32(1);
  const parts = ['aaa', 'Hello,', 'wörld!', '猫', '😀', "it's", '2024', '\u0000', '\t', '...', 'ΟΔΟΣ', 'a\u0301'];
  let prompt = '';
  while (prompt.length < 100_000) prompt += parts[Math.floor(random() * parts.length)] + (random() < 0.5 ? ' ' : '');
  const mixed = long.encode(prompt);
  const bangs = long.encode('!?'.repeat(50_000));
  assert.deepEqual([mixed.truncated, bangs.truncated, bangs.tokenCount], [true, true, 100_000]);
});
