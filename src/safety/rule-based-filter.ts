import { HARM_CATEGORIES, type HarmCategory, type PromptFilterResults, type Severity } from '../contract/annotations.ts';
import { BlocklistPromptFilter, type Blocklist } from './blocklist-filter.ts';
import { Lexicon } from './lexicon.ts';
import type { PromptFilter, PromptFilterContext, PromptVerdict } from './prompt-filter.ts';
import { blocksAt, thresholdFor, type Threshold } from './threshold.ts';

export { THRESHOLDS, type Threshold } from './threshold.ts';

export interface RuleBasedFilterOptions {
  blocklists: Blocklist[];
  /** Threshold of deployments that set none. */
  threshold: Threshold;
  /** Per deployment name. */
  deploymentThresholds?: Map<string, Threshold>;
  lexicon?: Lexicon;
}

/**
 * Scores the four harm categories, profanity and jailbreak from the term lists of lexicon.json,
 * and keeps the operator blocklists under `custom_blocklists`. A category blocks at or above the
 * deployment's threshold; gpt-image-1's `moderation: low` lets only `high` block, as Azure's
 * gpt-image-1 how-to describes. Jailbreak attempts always block; profanity is reported
 * (`detected`) but, as with Azure's default configuration, does not block.
 */
export class RuleBasedPromptFilter implements PromptFilter {
  private readonly blocklist: BlocklistPromptFilter;
  private readonly lexicon: Lexicon;

  constructor(private readonly options: RuleBasedFilterOptions) {
    this.blocklist = new BlocklistPromptFilter(options.blocklists);
    this.lexicon = options.lexicon ?? Lexicon.load();
  }

  async check(prompt: string, context: PromptFilterContext): Promise<PromptVerdict> {
    const { results: listed } = await this.blocklist.check(prompt);
    const scores = this.lexicon.score(prompt);
    const threshold = thresholdFor(this.options, context);
    const blocks = (severity: Severity) => blocksAt(threshold, severity);
    const categories = Object.fromEntries(
      HARM_CATEGORIES.map((c) => [c, { filtered: blocks(scores.severities[c]), severity: scores.severities[c] }]),
    ) as PromptFilterResults[HarmCategory] extends infer R ? Record<HarmCategory, R> : never;
    const results: PromptFilterResults = {
      ...categories,
      profanity: { filtered: false, detected: scores.profanity },
      jailbreak: { filtered: scores.jailbreak, detected: scores.jailbreak },
      custom_blocklists: listed.custom_blocklists,
    };
    const blocked = HARM_CATEGORIES.some((c) => categories[c].filtered) || scores.jailbreak || listed.custom_blocklists.filtered;
    return { blocked, results };
  }
}
