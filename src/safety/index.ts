export { type BlocklistDefinition, BlocklistError, Blocklists, parseBlocklistFile } from './blocklists.ts';
export type { ClassifierFailurePolicy, ClassifierScores, PromptClassifier, SeverityCutPoints } from './classifier.ts';
export type { ImageFilter, ImageFilterContext, ImageVerdict } from './image-filter.ts';
export { Lexicon } from './lexicon.ts';
export type { NsfwClassifier } from './nsfw/classifier.ts';
export { NSFW_CLASSES, type NsfwProbabilities, SEXUAL_SEVERITY_TABLE, sexualSeverity } from './nsfw/severity.ts';
export { sharedNsfwClassifier, WorkerNsfwClassifier } from './nsfw/worker-classifier.ts';
export { NsfwImageFilter, type NsfwImageFilterOptions } from './nsfw-image-filter.ts';
export { PassImageFilter } from './pass-image-filter.ts';
export { PLACEHOLDER_NOT_APPLICABLE, RealEnginesImageFilter } from './placeholder-image-filter.ts';
export {
  CATEGORY_LEVELS,
  type CategoryLevel,
  type DeploymentSafety,
  SafetyPolicy,
  type Threshold,
  THRESHOLDS,
  type ThresholdSetting,
} from './policy.ts';
export type { PromptFilter, PromptFilterContext, PromptVerdict } from './prompt-filter.ts';
export { type ClassifierBinding, SafetyPromptFilter, type SafetyPromptFilterOptions } from './safety-prompt-filter.ts';
