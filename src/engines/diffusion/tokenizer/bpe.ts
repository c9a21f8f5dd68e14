// Byte-pair encoding with CLIP's merge table (transformers `models/clip/tokenization_clip.py`, `bpe`).

/** tokenization_clip.py keeps merges.txt lines `[1 : 49152 - 256 - 2 + 1]`: the header is skipped. */
export const CLIP_MERGES_KEPT = 49152 - 256 - 2;

const END_OF_WORD = '</w>';

/** merges.txt as a pair → rank table. Ranks are line numbers after the header; lower merges first. */
export class MergeRanks {
  private readonly ranks = new Map<string, number>();

  /**
   * @param lines the merge lines after the header, already split into pairs. As in HF's
   *   `dict(zip(bpe_merges, range(...)))`, a pair listed twice keeps its later rank.
   */
  constructor(lines: ReadonlyArray<readonly [string, string]>) {
    lines.forEach(([first, second], rank) => this.ranks.set(`${first} ${second}`, rank));
  }

  get size(): number {
    return this.ranks.size;
  }

  /** Symbols never contain ' ' (bytes_to_unicode maps the space byte to 'Ġ'), so the key is unambiguous. */
  rank(first: string, second: string): number | undefined {
    return this.ranks.get(`${first} ${second}`);
  }
}

/**
 * BPE of one byte-level word: its characters, with `</w>` appended to the last, merged pair by pair.
 *
 * HF's loop picks the lowest-ranked adjacent pair, merges every occurrence of it left to right
 * (non-overlapping, scanning the word as it was before the pass), and starts over. That is O(n²) per
 * word, which a single 100,000-letter "word" turns into minutes. This version gives the same result
 * with a heap of candidate pairs over a linked list: it pops all candidates of the lowest rank, applies
 * the still-valid ones in position order (one HF pass), and only then queues the pairs the merges
 * created (they have other ranks, since `first + second` is neither `first` nor `second`).
 */
export function bytePairEncode(word: string, ranks: MergeRanks): string[] {
  const symbols = Array.from(word);
  if (symbols.length === 0) return [];
  symbols[symbols.length - 1] += END_OF_WORD;
  if (symbols.length === 1) return symbols;

  const next = symbols.map((_, i) => (i + 1 < symbols.length ? i + 1 : -1));
  const prev = symbols.map((_, i) => i - 1);
  const alive = symbols.map(() => true);
  const heap = new PairHeap();
  const queue = (left: number) => {
    const right = next[left] ?? -1;
    if (left < 0 || right < 0) return;
    const rank = ranks.rank(symbols[left] as string, symbols[right] as string);
    if (rank !== undefined) heap.push(rank, left);
  };
  for (let i = 0; i + 1 < symbols.length; i++) queue(i);

  while (heap.size > 0) {
    const rank = heap.peekRank();
    const lefts: number[] = [];
    while (heap.size > 0 && heap.peekRank() === rank) lefts.push(heap.pop());
    const merged: number[] = [];
    for (const left of lefts) {
      const right = next[left] ?? -1;
      // Stale candidates: the left symbol was absorbed, or either side changed since it was queued.
      if (!alive[left] || right < 0) continue;
      if (ranks.rank(symbols[left] as string, symbols[right] as string) !== rank) continue;
      symbols[left] += symbols[right] as string;
      alive[right] = false;
      next[left] = next[right] ?? -1;
      if (next[left] !== -1) prev[next[left] as number] = left;
      merged.push(left);
    }
    for (const left of merged) {
      if (!alive[left]) continue;
      queue(prev[left] ?? -1);
      queue(left);
    }
  }
  return symbols.filter((_, i) => alive[i]);
}

/** Min-heap of (rank, position), ordered by rank, then position, so one rank comes out left to right. */
class PairHeap {
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  // rank < 2^20 (at most CLIP_MERGES_KEPT merges) and position < 2^32 fit exactly in a double.
  push(rank: number, position: number): void {
    const keys = this.keys;
    let i = keys.push(rank * 2 ** 32 + position) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((keys[parent] as number) <= (keys[i] as number)) break;
      [keys[parent], keys[i]] = [keys[i] as number, keys[parent] as number];
      i = parent;
    }
  }

  peekRank(): number {
    return Math.floor((this.keys[0] as number) / 2 ** 32);
  }

  /** Removes the smallest entry and returns its position. */
  pop(): number {
    const keys = this.keys;
    const top = keys[0] as number;
    const last = keys.pop() as number;
    if (keys.length > 0) {
      keys[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < keys.length && (keys[l] as number) < (keys[smallest] as number)) smallest = l;
        if (r < keys.length && (keys[r] as number) < (keys[smallest] as number)) smallest = r;
        if (smallest === i) break;
        [keys[smallest], keys[i]] = [keys[i] as number, keys[smallest] as number];
        i = smallest;
      }
    }
    return top % 2 ** 32;
  }
}

/**
 * merges.txt → the pairs HF keeps: `read().strip().split("\n")[1 : CLIP_MERGES_KEPT + 1]`, each line
 * split on whitespace. The first line is a header ("#version: 0.2") and is skipped whatever it says.
 * Throws a RangeError naming the line (1-based, as an editor shows it) when a kept line is not a pair;
 * HF would silently keep a pair that can never match.
 */
export function parseMerges(text: string): Array<[string, string]> {
  const lines = text
    .trim()
    .split('\n')
    .slice(1, CLIP_MERGES_KEPT + 1);
  return lines.map((line, i) => {
    const parts = line.trim().split(/\s+/u);
    if (parts.length !== 2) throw new RangeError(`line ${i + 2} is not a pair of symbols: ${JSON.stringify(line)}`);
    return parts as [string, string];
  });
}
