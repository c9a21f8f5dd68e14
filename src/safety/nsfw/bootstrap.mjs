// Worker threads do not inherit the parent's TypeScript loader on Node 20, so the classifier
// worker registers tsx itself before importing its TypeScript entry point.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
