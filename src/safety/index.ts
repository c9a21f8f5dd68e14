export type { PromptFilter, PromptVerdict, PromptFilterContext } from './prompt-filter.ts';
export type { ImageFilter, ImageVerdict } from './image-filter.ts';
export { BlocklistPromptFilter, type Blocklist } from './blocklist-filter.ts';
export { PassImageFilter } from './pass-image-filter.ts';
