import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import { RE2JS } from 're2js';

import { tokenize } from './normalize.ts';

/** One operator blocklist as configured: inline entries, a file of entries, or both. */
export interface BlocklistDefinition {
  id: string;
  /** Whole words or phrases, matched through the same evasion-aware reading as the term lists. */
  terms?: string[];
  /** RE2 regular expressions, case-insensitive, matched anywhere in the prompt. */
  patterns?: string[];
  /** A text file of entries (see parseBlocklistFile), re-read whenever it changes. */
  file?: string;
}

export class BlocklistError extends Error {
  constructor(where: string, problem: string) {
    super(`blocklist ${where}: ${problem}`);
    this.name = 'BlocklistError';
  }
}

/** Longest term, in words; matching costs O(prompt words × this). */
const MAX_TERM_WORDS = 8;

interface Entries {
  /** Each term's words joined by one space. */
  terms: Set<string>;
  /** Single-word terms, so "b.a.d-w.o.r.d" style spellings read joined. */
  words: Set<string>;
  /** Each pattern's source, checked one by one so an error names the bad one. */
  patterns: string[];
  /** All patterns as one alternation: one linear pass over the text instead of one per pattern. */
  combined: RE2JS | null;
}

interface List {
  id: string;
  inline: Entries;
  fromFile: Entries;
  file?: string;
}

interface Logger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

/**
 * The operator blocklists, reported under `custom_blocklists` as Azure does. Terms are read the
 * way the category term lists read prompts (look-alikes, leetspeak, "b a d" spacing); patterns
 * are RE2 expressions (re2js: a pure-JavaScript port of RE2, linear-time by construction, so an
 * operator's pattern cannot backtrack catastrophically on a hostile prompt). Lists backed by a
 * file follow it while the server runs: a change is picked up within moments, and a file that
 * becomes unreadable or invalid leaves the last good entries in force (and logs why).
 */
export class Blocklists {
  private readonly lists: List[];
  private readonly watchers: FSWatcher[] = [];
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly reloads = new Set<Promise<void>>();

  /** Compiles every list now; throws BlocklistError naming the list (and file line) at fault. */
  constructor(
    definitions: readonly BlocklistDefinition[],
    private readonly log?: Logger,
  ) {
    this.lists = definitions.map((d) => ({
      id: d.id,
      inline: compile(d.id, d.terms ?? [], d.patterns ?? []),
      fromFile: d.file === undefined ? emptyEntries() : parseBlocklistFile(d.id, d.file, readText(d.id, d.file)),
      ...(d.file === undefined ? {} : { file: d.file }),
    }));
  }

  get ids(): string[] {
    return this.lists.map((l) => l.id);
  }

  /** The lists among `ids` (all when undefined) that the prompt hits, in configuration order. */
  match(prompt: string, ids?: readonly string[]): { id: string; filtered: boolean }[] {
    const lists = ids === undefined ? this.lists : this.lists.filter((l) => ids.includes(l.id));
    if (lists.length === 0) return [];
    const isTerm = (word: string) => lists.some((l) => l.inline.words.has(word) || l.fromFile.words.has(word));
    const tokens = tokenize(prompt, isTerm);
    const phrases: string[] = [];
    for (let start = 0; start < tokens.length; start++) {
      let phrase = '';
      for (let end = start; end < tokens.length && end - start < MAX_TERM_WORDS; end++) {
        phrase = end === start ? tokens[end]! : `${phrase} ${tokens[end]}`;
        phrases.push(phrase);
      }
    }
    // Patterns see the prompt as written (folded to NFKC) and as read, so "b@d" meets /bad/.
    const texts = [prompt.normalize('NFKC'), tokens.join(' ')];
    const hits = (entries: Entries) =>
      phrases.some((p) => entries.terms.has(p)) ||
      (entries.combined !== null && texts.some((t) => entries.combined!.matcher(t).find()));
    return lists.filter((l) => hits(l.inline) || hits(l.fromFile)).map((l) => ({ id: l.id, filtered: true }));
  }

  /** Follow the lists' files: re-read one shortly after it changes (editors often replace files). */
  watch(): void {
    for (const list of this.lists) {
      if (list.file === undefined) continue;
      const file = list.file;
      const watcher = watch(dirname(file), (_event, name) => {
        if (name !== null && name.toString() !== basename(file)) return;
        clearTimeout(this.pending.get(list.id));
        this.pending.set(
          list.id,
          setTimeout(() => this.track(this.reload(list.id)), 50),
        );
      });
      watcher.on('error', (error) =>
        this.log?.warn({ blocklist: list.id, file, err: error }, 'blocklist file watch failed'),
      );
      this.watchers.push(watcher);
    }
  }

  /** Re-reads one list's file now; on any problem the entries in force stay. */
  async reload(id: string): Promise<void> {
    const list = this.lists.find((l) => l.id === id);
    if (list?.file === undefined) return;
    try {
      list.fromFile = parseBlocklistFile(id, list.file, await readFile(list.file, 'utf8'));
      this.log?.info(
        { blocklist: id, terms: list.fromFile.terms.size, patterns: list.fromFile.patterns.length },
        'blocklist reloaded',
      );
    } catch (error) {
      this.log?.warn(
        { blocklist: id, file: list.file, err: (error as Error).message },
        'blocklist not reloaded; the previous entries stay in force',
      );
    }
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.close();
    for (const t of this.pending.values()) clearTimeout(t);
    this.watchers.length = 0;
    await Promise.all(this.reloads);
  }

  private track(reload: Promise<void>): void {
    this.reloads.add(reload);
    void reload.finally(() => this.reloads.delete(reload));
  }
}

/**
 * A blocklist file: UTF-8 text, one entry per line. Blank lines and lines starting with `#` are
 * skipped; `/expression/` is an RE2 pattern; anything else is a term (a word or phrase).
 */
export function parseBlocklistFile(id: string, file: string, text: string): Entries {
  const entries = emptyEntries();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const where = `"${id}" (${file} line ${i + 1})`;
    if (line === '' || line.startsWith('#')) return;
    if (line.length > 1 && line.startsWith('/') && line.endsWith('/')) addPattern(entries, where, line.slice(1, -1));
    else addTerm(entries, where, line);
  });
  return combine(entries);
}

function compile(id: string, terms: readonly string[], patterns: readonly string[]): Entries {
  const entries = emptyEntries();
  for (const term of terms) addTerm(entries, `"${id}"`, term);
  for (const pattern of patterns) addPattern(entries, `"${id}"`, pattern);
  return combine(entries);
}

function combine(entries: Entries): Entries {
  if (entries.patterns.length > 0)
    entries.combined = RE2JS.compile(entries.patterns.map((p) => `(?:${p})`).join('|'), RE2JS.CASE_INSENSITIVE);
  return entries;
}

function emptyEntries(): Entries {
  return { terms: new Set(), words: new Set(), patterns: [], combined: null };
}

function addTerm(entries: Entries, where: string, term: string): void {
  const words = tokenize(term);
  if (words.length === 0) throw new BlocklistError(where, `term ${JSON.stringify(term)} has no letters or digits`);
  if (words.length > MAX_TERM_WORDS)
    throw new BlocklistError(where, `term ${JSON.stringify(term)} is longer than ${MAX_TERM_WORDS} words`);
  entries.terms.add(words.join(' '));
  if (words.length === 1) entries.words.add(words[0]!);
}

function addPattern(entries: Entries, where: string, pattern: string): void {
  try {
    RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
    entries.patterns.push(pattern);
  } catch (error) {
    throw new BlocklistError(where, `pattern /${pattern}/ is not a valid RE2 expression (${(error as Error).message})`);
  }
}

function readText(id: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new BlocklistError(
      `"${id}"`,
      `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}
