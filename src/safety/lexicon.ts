import { readFileSync } from 'node:fs';
import { HARM_CATEGORIES, type HarmCategory, type Severity } from '../contract/annotations.ts';
import { tokenize } from './normalize.ts';

/**
 * The rule-based category model as data (lexicon.json): what counts, how much, and which contexts
 * make it innocent. The code only matches phrases and applies the rules; the lists are the model.
 */
export interface LexiconData {
  /** Named word lists that rules refer to with `near` ("people", "groups"). */
  sets: Record<string, string[]>;
  /** Each matched term gives its category this severity, if `near` (when set) is within `window` words. */
  rules: { category: RuleCategory; severity: Exclude<Severity, 'safe'>; terms: string[]; near?: string; window?: number }[];
  /** Phrases that contain a term innocently ("killer whale"): a term inside one does not count. */
  exceptions: string[];
  /** Words near a match (within `window`) that lower its severity by `lower` levels ("painting", "memorial"). */
  softeners: { categories: RuleCategory[]; words: string[]; window: number; lower: number }[];
}
export type RuleCategory = HarmCategory | 'profanity' | 'jailbreak';

export interface Scores {
  severities: Record<HarmCategory, Severity>;
  profanity: boolean;
  jailbreak: boolean;
}

const LEVELS: Severity[] = ['safe', 'low', 'medium', 'high'];
export const severityRank = (s: Severity): number => LEVELS.indexOf(s);

/** Longest phrase looked for, in words; matching is O(prompt words × this). */
const MAX_PHRASE = 8;

type Entry = { kind: 'rule'; rule: number } | { kind: 'exception' } | { kind: 'set'; set: string } | { kind: 'softener'; softener: number };
interface Node {
  next: Map<string, Node>;
  entries: Entry[];
}

/** A compiled lexicon: one token trie for every phrase of every list. */
export class Lexicon {
  private readonly root: Node = { next: new Map(), entries: [] };
  private readonly singleWords = new Set<string>();

  constructor(readonly data: LexiconData) {
    data.rules.forEach((rule, i) => rule.terms.forEach((t) => this.add(t, { kind: 'rule', rule: i })));
    data.exceptions.forEach((t) => this.add(t, { kind: 'exception' }));
    for (const [set, words] of Object.entries(data.sets)) words.forEach((t) => this.add(t, { kind: 'set', set }));
    data.softeners.forEach((s, i) => s.words.forEach((t) => this.add(t, { kind: 'softener', softener: i })));
  }

  static load(path: URL | string = new URL('./lexicon.json', import.meta.url)): Lexicon {
    return new Lexicon(JSON.parse(readFileSync(path, 'utf8')) as LexiconData);
  }

  private add(phrase: string, entry: Entry): void {
    const words = tokenize(phrase);
    if (words.length === 0 || words.length > MAX_PHRASE) throw new Error(`lexicon phrase ${JSON.stringify(phrase)} must have 1–${MAX_PHRASE} words`);
    // A one-letter term would match every stray letter ("xxx" squeezes to "x").
    if (words.length === 1 && words[0]!.length < 2) throw new Error(`lexicon phrase ${JSON.stringify(phrase)} reads as one letter`);
    if (words.length === 1) this.singleWords.add(words[0]!);
    let node = this.root;
    for (const w of words) {
      let child = node.next.get(w);
      if (!child) node.next.set(w, (child = { next: new Map(), entries: [] }));
      node = child;
    }
    node.entries.push(entry);
  }

  /** Whether a word is in some list, as written or as a plural ("knives" aside). */
  isTerm = (word: string): boolean => this.singleWords.has(word) || stems(word).some((w) => this.singleWords.has(w));

  score(prompt: string): Scores {
    const tokens = tokenize(prompt, this.isTerm);
    const matches = this.match(tokens);
    const n = tokens.length;

    // Tokens inside an exception phrase are innocent for every list.
    const covered = new Uint8Array(n + 1);
    for (const m of matches) if (m.entry.kind === 'exception') covered.fill(1, m.start, m.end);
    const coveredBefore = prefixCounts(n, (i) => covered[i] === 1);
    const isCovered = (start: number, end: number) => coveredBefore[end]! - coveredBefore[start]! > 0;

    // Where each named set and softener occurs, as prefix counts, so "is one within k words" is O(1).
    const near = (starts: number[]) => prefixCounts(n, ((marks) => (i: number) => marks.has(i))(new Set(starts)));
    const setStarts = new Map<string, number[]>();
    const softenerStarts = new Map<number, number[]>();
    for (const m of matches) {
      if (isCovered(m.start, m.end)) continue;
      if (m.entry.kind === 'set') push(setStarts, m.entry.set, m.start);
      if (m.entry.kind === 'softener') push(softenerStarts, m.entry.softener, m.start);
    }
    const setCounts = new Map([...setStarts].map(([k, v]) => [k, near(v)]));
    const softenerCounts = new Map([...softenerStarts].map(([k, v]) => [k, near(v)]));
    const within = (counts: number[] | undefined, start: number, end: number, window: number) =>
      counts !== undefined && counts[Math.min(n, end + window)]! - counts[Math.max(0, start - window)]! > 0;

    const rank: Record<RuleCategory, number> = { hate: 0, sexual: 0, violence: 0, self_harm: 0, profanity: 0, jailbreak: 0 };
    for (const m of matches) {
      if (m.entry.kind !== 'rule' || isCovered(m.start, m.end)) continue;
      const rule = this.data.rules[m.entry.rule]!;
      if (rule.near !== undefined && !within(setCounts.get(rule.near), m.start, m.end, rule.window ?? 4)) continue;
      let level = severityRank(rule.severity);
      this.data.softeners.forEach((s, i) => {
        if (s.categories.includes(rule.category) && within(softenerCounts.get(i), m.start, m.end, s.window)) level -= s.lower;
      });
      rank[rule.category] = Math.max(rank[rule.category], level);
    }
    const severities = Object.fromEntries(HARM_CATEGORIES.map((c) => [c, LEVELS[rank[c]]!])) as Record<HarmCategory, Severity>;
    return { severities, profanity: rank.profanity > 0, jailbreak: rank.jailbreak > 0 };
  }

  /** Every phrase occurrence: from each word, walk the trie at most MAX_PHRASE words on. */
  private match(tokens: string[]): { start: number; end: number; entry: Entry }[] {
    const found: { start: number; end: number; entry: Entry }[] = [];
    for (let start = 0; start < tokens.length; start++) {
      let node: Node | undefined = this.root;
      for (let end = start; end < tokens.length && end - start < MAX_PHRASE; end++) {
        const word = tokens[end]!;
        node = node.next.get(word) ?? stems(word).map((w) => node!.next.get(w)).find(Boolean);
        if (!node) break;
        for (const entry of node.entries) found.push({ start, end: end + 1, entry });
      }
    }
    return found;
  }
}

/** Plurals and third persons read as the word: "kills" → "kill", "crosses" → "cross". */
function stems(word: string): string[] {
  if (word.length <= 3 || !word.endsWith('s') || word.endsWith('ss')) return [];
  return word.endsWith('es') ? [word.slice(0, -1), word.slice(0, -2)] : [word.slice(0, -1)];
}

function prefixCounts(n: number, marked: (i: number) => boolean): number[] {
  const counts = new Array<number>(n + 1);
  counts[0] = 0;
  for (let i = 0; i < n; i++) counts[i + 1] = counts[i]! + (marked(i) ? 1 : 0);
  return counts;
}

function push<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
