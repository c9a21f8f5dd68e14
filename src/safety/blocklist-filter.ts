import { categoriesAt, type PromptFilterResults } from '../contract/annotations.ts';
import type { PromptFilter, PromptVerdict } from './prompt-filter.ts';

export interface Blocklist {
  id: string;
  /** Whole words or phrases, matched case-insensitively after Unicode normalization. */
  terms: string[];
}

/**
 * The embedded prompt filter: operator blocklists, reported under `custom_blocklists` as Azure
 * does. It scores no harm categories (they read `safe`); the category classifiers plug in beside it.
 */
export class BlocklistPromptFilter implements PromptFilter {
  private readonly lists: { id: string; terms: string[] }[];

  constructor(blocklists: Blocklist[]) {
    this.lists = blocklists.map((list) => ({ id: list.id, terms: list.terms.map(normalize).filter(Boolean) }));
  }

  async check(prompt: string): Promise<PromptVerdict> {
    // Pad with spaces so a term matches whole words only: "ass" must not match "class".
    const text = ` ${normalize(prompt)} `;
    const details = this.lists.map((list) => ({
      id: list.id,
      filtered: list.terms.some((term) => text.includes(` ${term} `)),
    }));
    const filtered = details.some((d) => d.filtered);
    const results: PromptFilterResults = {
      ...categoriesAt('safe'),
      profanity: { filtered: false, detected: false },
      jailbreak: { filtered: false, detected: false },
      custom_blocklists: { filtered, details: details.filter((d) => d.filtered) },
    };
    return { blocked: filtered, results };
  }
}

/** NFKC folds look-alike forms (full-width letters, ligatures); punctuation becomes word breaks. */
function normalize(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}
