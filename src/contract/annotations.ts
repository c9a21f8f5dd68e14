/**
 * Azure's content-filter annotation objects, in wire shape (snake_case), as DALL-E 3 items and
 * `inner_error` carry them (docs/azure-api.md, "Content-filter annotations").
 */

export type Severity = 'safe' | 'low' | 'medium' | 'high';
/** Severities from least to most severe. */
export const SEVERITIES: readonly Severity[] = ['safe', 'low', 'medium', 'high'];
export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);
export const HARM_CATEGORIES = ['hate', 'sexual', 'violence', 'self_harm'] as const;
export type HarmCategory = (typeof HARM_CATEGORIES)[number];

export interface SeverityResult {
  filtered: boolean;
  severity: Severity;
}
export interface DetectionResult {
  filtered: boolean;
  detected: boolean;
}
export interface BlocklistResults {
  filtered: boolean;
  details: { id: string; filtered: boolean }[];
}
/** Set when the filter itself failed, as Azure reports it. */
export interface FilterError {
  code: string;
  message: string;
}

/**
 * easel's own note, beside Azure's fields, when the image classifier did not look at the image
 * (a placeholder picture): the categories then read unfiltered without a judgement behind them.
 */
export interface ImageFilterNote {
  ran: false;
  reason: string;
}

/** Per generated image: the four harm categories. */
export type ContentFilterResults = Record<HarmCategory, SeverityResult> & {
  error?: FilterError;
  image_filter?: ImageFilterNote;
};

/** Per item, about the prompt: the four categories, profanity, jailbreak and custom blocklists. */
export type PromptFilterResults = ContentFilterResults & {
  profanity: DetectionResult;
  jailbreak: DetectionResult;
  custom_blocklists: BlocklistResults;
};

export function categoriesAt(severity: Severity, filtered = false): Record<HarmCategory, SeverityResult> {
  return {
    hate: { filtered, severity },
    sexual: { filtered, severity },
    violence: { filtered, severity },
    self_harm: { filtered, severity },
  };
}
