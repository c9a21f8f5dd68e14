// The placeholder engine: a deterministic labelled picture per request, no model needed.
// Other folders import from here, not from the files behind it.
export { PlaceholderEngine } from './placeholder-engine.ts';
