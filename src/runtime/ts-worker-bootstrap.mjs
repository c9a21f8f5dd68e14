// Worker threads do not inherit the parent's TypeScript loader on Node 20, so every worker starts
// here: register tsx, then import the TypeScript entry point named by the last argv entry.
import { register } from 'tsx/esm/api';

register();
// Worker argv entries are appended to process.argv: the entry point is the last one.
await import(process.argv.at(-1));
