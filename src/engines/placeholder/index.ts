export { PlaceholderEngine } from './placeholder-engine.ts';
