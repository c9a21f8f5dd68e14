import type { PromptFilterResults } from '../contract/annotations.ts';

export interface PromptVerdict {
  /** The prompt must not be generated; the caller answers with the content-filter error. */
  blocked: boolean;
  /** The annotation object Azure puts in `prompt_filter_results` and `inner_error`. */
  results: PromptFilterResults;
}

export interface PromptFilterContext {
  deployment: string;
  /** gpt-image-1 `moderation: low` lowers the thresholds. */
  moderation: 'low' | 'auto';
}

/** Scores a prompt before anything is queued. */
export interface PromptFilter {
  check(prompt: string, context: PromptFilterContext): Promise<PromptVerdict>;
}
