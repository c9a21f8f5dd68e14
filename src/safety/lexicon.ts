import { readFileSync } from 'node:fs';

import {
  HARM_CATEGORIES,
  type HarmCategory,
  SEVERITIES,
  type Severity,
  severityRank,
} from '../contract/annotations.ts';
import { tokenize } from './normalize.ts';

/**
 * The rule-based category model as data (lexicon.json): what counts, how much, and which contexts
 * make it innocent. The code only matches phrases and applies the rules; the lists are the model.
 *
 * Every phrase (a rule term, an exception, a softener word, a set entry) is a template that is
 * expanded once, when the Lexicon is built:
 * - `{name}` stands for every entry of the set `name` ("{_weapons} attack");
 * - `(a|b|c)` stands for each alternative in turn ("(cut|slit) (her|his) wrists"); an empty
 *   alternative makes the part optional ("(|the) bridge"); alternatives may hold placeholders and
 *   further groups;
 * - a phrase with several placeholders or groups expands to their cartesian product, joined as
 *   written; runs of spaces are collapsed and the ends trimmed ("(|the) bridge" → "bridge", "the bridge").
 * Set entries may use other sets (not in a cycle). A set named with a leading `_` is template-only:
 * it only builds phrases, is never matched itself and cannot be a rule's `near`. No other
 * character is special, and there are no regular expressions. Comments: a `"//"` key is ignored
 * in any object (the file, `sets`, a rule, a softener), and so is any list entry starting with `//`.
 * Expansion refuses a phrase that expands to more than {@link DEFAULT_LIMITS.perPhrase} phrases and
 * a lexicon of more than {@link DEFAULT_LIMITS.total} in all.
 */
export interface LexiconData {
  /** A comment; ignored. */
  '//'?: string;
  /**
   * Named word lists that rules refer to with `near` ("people", "groups") and that phrases use as
   * `{name}`; `_name` lists are template-only.
   */
  sets: Record<string, string[]>;
  /** Each matched term gives its category this severity, if `near` (when set) is within `window` words (default 4). */
  rules: {
    '//'?: string;
    category: RuleCategory;
    severity: Exclude<Severity, 'safe'>;
    terms: string[];
    near?: string;
    window?: number;
  }[];
  /** Phrases that contain a term innocently ("killer whale"): a term inside one does not count. */
  exceptions: string[];
  /** Words near a match (within `window`) that lower its severity by `lower` levels ("painting", "memorial"). */
  softeners: { '//'?: string; categories: RuleCategory[]; words: string[]; window: number; lower: number }[];
}
export type RuleCategory = HarmCategory | 'profanity' | 'jailbreak';

export interface Scores {
  severities: Record<HarmCategory, Severity>;
  profanity: boolean;
  jailbreak: boolean;
}

/** Longest phrase looked for, in words; matching is O(prompt words × this). */
const MAX_PHRASE = 8;

type Entry =
  | { kind: 'rule'; rule: number }
  | { kind: 'exception' }
  | { kind: 'set'; set: string }
  | { kind: 'softener'; softener: number };
interface Node {
  next: Map<string, Node>;
  entries: Entry[];
}

/** A compiled lexicon: one token trie for every phrase of every list. */
export class Lexicon {
  private readonly root: Node = { next: new Map(), entries: [] };
  private readonly singleWords = new Set<string>();

  /** The lexicon with every template expanded, comments and template-only sets left out. */
  readonly data: LexiconData;

  constructor(source: LexiconData, limits: ExpansionLimits = DEFAULT_LIMITS) {
    const data = (this.data = expandLexicon(source, limits));
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
    if (words.length === 0 || words.length > MAX_PHRASE)
      throw new Error(`lexicon phrase ${JSON.stringify(phrase)} must have 1–${MAX_PHRASE} words`);
    // A one-letter term would match every stray letter ("xxx" squeezes to "x").
    if (words.length === 1 && words[0]!.length < 2)
      throw new Error(`lexicon phrase ${JSON.stringify(phrase)} reads as one letter`);
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
    const near = (starts: number[]) =>
      prefixCounts(
        n,
        (
          (marks) => (i: number) =>
            marks.has(i)
        )(new Set(starts)),
      );
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

    const rank: Record<RuleCategory, number> = {
      hate: 0,
      sexual: 0,
      violence: 0,
      self_harm: 0,
      profanity: 0,
      jailbreak: 0,
    };
    for (const m of matches) {
      if (m.entry.kind !== 'rule' || isCovered(m.start, m.end)) continue;
      const rule = this.data.rules[m.entry.rule]!;
      if (rule.near !== undefined && !within(setCounts.get(rule.near), m.start, m.end, rule.window ?? 4)) continue;
      let level = severityRank(rule.severity);
      this.data.softeners.forEach((s, i) => {
        if (s.categories.includes(rule.category) && within(softenerCounts.get(i), m.start, m.end, s.window))
          level -= s.lower;
      });
      rank[rule.category] = Math.max(rank[rule.category], level);
    }
    const severities = Object.fromEntries(HARM_CATEGORIES.map((c) => [c, SEVERITIES[rank[c]]!])) as Record<
      HarmCategory,
      Severity
    >;
    return { severities, profanity: rank.profanity > 0, jailbreak: rank.jailbreak > 0 };
  }

  /** Every phrase occurrence: from each word, walk the trie at most MAX_PHRASE words on. */
  private match(tokens: string[]): { start: number; end: number; entry: Entry }[] {
    const found: { start: number; end: number; entry: Entry }[] = [];
    for (let start = 0; start < tokens.length; start++) {
      let node: Node | undefined = this.root;
      for (let end = start; end < tokens.length && end - start < MAX_PHRASE; end++) {
        const word = tokens[end]!;
        node =
          node.next.get(word) ??
          stems(word)
            .map((w) => node!.next.get(w))
            .find(Boolean);
        if (!node) break;
        for (const entry of node.entries) found.push({ start, end: end + 1, entry });
      }
    }
    return found;
  }
}

/** Bounds on template expansion, so a typo cannot make the filter build millions of phrases. */
export interface ExpansionLimits {
  /** Most phrases one template may expand to. */
  perPhrase: number;
  /** Most phrases in the whole expanded lexicon, template-only sets included. */
  total: number;
}
export const DEFAULT_LIMITS: Readonly<ExpansionLimits> = Object.freeze({ perPhrase: 20_000, total: 200_000 });

type Template = Item[];
type Item = { text: string } | { set: string } | { alternatives: Template[] };

const isComment = (entry: string): boolean => entry.trimStart().startsWith('//');
const isTemplateOnly = (set: string): boolean => set.startsWith('_');

/**
 * Expand every template of a lexicon (see {@link LexiconData}): the result has plain phrases only,
 * each list without comments or repeats, and no template-only sets.
 */
export function expandLexicon(source: LexiconData, limits: ExpansionLimits = DEFAULT_LIMITS): LexiconData {
  let total = 0;
  const count = (phrases: string[]): string[] => {
    total += phrases.length;
    if (total > limits.total) throw new Error(`lexicon expands to more than ${limits.total} phrases`);
    return phrases;
  };
  const setNames = Object.keys(source.sets).filter((name) => name !== '//');
  const expanded = new Map<string, string[]>();
  const resolving: string[] = [];

  const resolveSet = (name: string, phrase: string): string[] => {
    const done = expanded.get(name);
    if (done) return done;
    if (!setNames.includes(name))
      throw new Error(`lexicon phrase ${JSON.stringify(phrase)} uses unknown set "${name}"`);
    if (resolving.includes(name)) {
      throw new Error(`lexicon sets form a cycle: ${[...resolving.slice(resolving.indexOf(name)), name].join(' → ')}`);
    }
    resolving.push(name);
    const entries = source.sets[name];
    if (!Array.isArray(entries)) throw new Error(`lexicon set "${name}" must be a list of phrases`);
    const phrases = count(expandList(entries));
    resolving.pop();
    expanded.set(name, phrases);
    return phrases;
  };

  const expandList = (entries: string[]): string[] => {
    const out = new Set<string>();
    for (const entry of entries) {
      if (isComment(entry)) continue;
      const template = parseTemplate(entry);
      const n = size(template, entry);
      if (n > limits.perPhrase)
        throw new Error(
          `lexicon phrase ${JSON.stringify(entry)} expands to ${n} phrases (more than ${limits.perPhrase})`,
        );
      for (const phrase of expand(template, entry)) out.add(phrase.replace(/\s+/gu, ' ').trim());
    }
    return [...out];
  };

  const size = (template: Template, phrase: string): number =>
    template.reduce((product, item) => {
      if ('text' in item) return product;
      if ('set' in item) return product * resolveSet(item.set, phrase).length;
      return product * item.alternatives.reduce((sum, alternative) => sum + size(alternative, phrase), 0);
    }, 1);

  const expand = (template: Template, phrase: string): string[] => {
    let out = [''];
    for (const item of template) {
      const options =
        'text' in item
          ? [item.text]
          : 'set' in item
            ? resolveSet(item.set, phrase)
            : item.alternatives.flatMap((a) => expand(a, phrase));
      out = out.flatMap((prefix) => options.map((option) => prefix + option));
    }
    return out;
  };

  for (const name of setNames) resolveSet(name, `{${name}}`);
  const sets: Record<string, string[]> = {};
  for (const name of setNames) if (!isTemplateOnly(name)) sets[name] = expanded.get(name)!;

  const rules = source.rules.map(({ '//': _, terms, ...rule }) => {
    if (rule.near !== undefined && !(rule.near in sets)) {
      throw new Error(
        `lexicon rule near "${rule.near}": ${isTemplateOnly(rule.near) ? 'a template-only set cannot be near' : 'no such set'}`,
      );
    }
    return { ...rule, terms: count(expandList(terms)) };
  });
  const exceptions = count(expandList(source.exceptions));
  const softeners = source.softeners.map(({ '//': _, words, ...softener }) => ({
    ...softener,
    words: count(expandList(words)),
  }));
  return { sets, rules, exceptions, softeners };
}

/** "a {x} (b|c)" → its parts; `{`, `}`, `(`, `)` and `|` are the only special characters. */
function parseTemplate(phrase: string): Template {
  let at = 0;
  const fail = (why: string): never => {
    throw new Error(`lexicon phrase ${JSON.stringify(phrase)}: ${why} at character ${at + 1}`);
  };
  const sequence = (inGroup: boolean): Template => {
    const items: Template = [];
    while (at < phrase.length) {
      const ch = phrase[at]!;
      if (ch === '|' || ch === ')') {
        if (!inGroup) fail(`"${ch}" outside a group`);
        return items;
      }
      if (ch === '}') fail('"}" without "{"');
      if (ch === '{') {
        const end = phrase.indexOf('}', at);
        const name = end < 0 ? '' : phrase.slice(at + 1, end);
        if (end < 0 || name === '' || /[{()|]/u.test(name)) fail('"{" needs a set name and "}"');
        items.push({ set: name });
        at = end + 1;
      } else if (ch === '(') {
        at++;
        const alternatives = [sequence(true)];
        while (phrase[at] === '|') {
          at++;
          alternatives.push(sequence(true));
        }
        if (phrase[at] !== ')') fail('"(" without ")"');
        at++;
        items.push({ alternatives });
      } else {
        const start = at;
        while (at < phrase.length && !'{}()|'.includes(phrase[at]!)) at++;
        items.push({ text: phrase.slice(start, at) });
      }
    }
    if (inGroup) fail('"(" without ")"');
    return items;
  };
  return sequence(false);
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
