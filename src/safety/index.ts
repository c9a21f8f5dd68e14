export type { PromptFilter, PromptVerdict, PromptFilterContext } from './prompt-filter.ts';
export type { ImageFilter, ImageVerdict } from './image-filter.ts';
export { BlocklistPromptFilter, type Blocklist } from './blocklist-filter.ts';
export { RuleBasedPromptFilter, THRESHOLDS, type Threshold } from './rule-based-filter.ts';
export { Lexicon } from './lexicon.ts';
export { PassImageFilter } from './pass-image-filter.ts';
