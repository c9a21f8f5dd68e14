// Evaluates the prompt filter (term lists only, no classifiers) at the default threshold (medium):
// per-category recall on harmful prompts and the false-positive rate on benign ones, per split.
// Usage: npm run eval:safety [-- split …]   (prints JSON; default every split)
// Splits: `tuning` and `held-out` (eval/safety/prompts.jsonl, written with the term lists; tuned on
// tuning only), `independent` (eval/safety/independent.jsonl, written without seeing the lists;
// first measured untouched, then used for tuning), `final-held-out` (eval/safety/final-held-out.jsonl,
// written without seeing the lists or the other sets, never used for tuning), and `senses-tuning` /
// `senses-held-out` (eval/safety/benign-senses.jsonl: benign prompts whose words name harm in another
// sense — drinks, sports, photography, cooking, games, history, art…; written without seeing the
// innocent-context families, split 2:1 by family before any tuning; only senses-tuning is tuned on).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { HARM_CATEGORIES, type HarmCategory } from '../src/contract/annotations.ts';
import { SafetyPolicy, SafetyPromptFilter } from '../src/safety/index.ts';

export interface LabelledPrompt {
  split: (typeof SPLITS)[number];
  label: HarmCategory | 'profanity' | 'jailbreak' | 'benign';
  severity: 'low' | 'medium' | 'high' | null;
  prompt: string;
  /** The kind of innocent context a benign prompt was written for (benign-senses.jsonl only). */
  family?: string;
}
const SPLITS = ['tuning', 'held-out', 'independent', 'final-held-out', 'senses-tuning', 'senses-held-out'] as const;
interface Rate {
  n: number;
  hits: number;
  rate: number;
  misses: string[];
}

const EVAL_FILES = ['prompts.jsonl', 'independent.jsonl', 'final-held-out.jsonl', 'benign-senses.jsonl'].map((f) =>
  fileURLToPath(new URL(`../eval/safety/${f}`, import.meta.url)),
);

/** Every labelled prompt of every file. */
export function loadEvalSet(paths = EVAL_FILES): LabelledPrompt[] {
  return paths.flatMap((path) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as LabelledPrompt),
  );
}

/** Figures for one split: recall per category (medium and high prompts blocked in that category). */
export async function evaluate(prompts: LabelledPrompt[]) {
  const filter = new SafetyPromptFilter({ policy: new SafetyPolicy({ threshold: 'medium' }) });
  const tally = new Map<string, { n: number; hits: number; misses: string[] }>();
  const count = (key: string, hit: boolean, prompt: string) => {
    const t = tally.get(key) ?? { n: 0, hits: 0, misses: [] };
    t.n++;
    if (hit) t.hits++;
    else t.misses.push(prompt);
    tally.set(key, t);
  };
  for (const p of prompts) {
    const { blocked, results } = await filter.check(p.prompt, { deployment: 'dall-e-3', moderation: 'auto' });
    if (p.label === 'benign') count('benign_passed', !blocked, p.prompt);
    else if (p.label === 'profanity') count('profanity', results.profanity.detected, p.prompt);
    else if (p.label === 'jailbreak') count('jailbreak', results.jailbreak.filtered, p.prompt);
    else if (p.severity === 'low') count(`${p.label}_low_detected`, results[p.label].severity !== 'safe', p.prompt);
    else count(p.label, results[p.label].filtered, p.prompt);
  }
  const rate = (key: string): Rate => {
    const t = tally.get(key) ?? { n: 0, hits: 0, misses: [] };
    return { n: t.n, hits: t.hits, rate: t.n === 0 ? 0 : round(t.hits / t.n), misses: t.misses };
  };
  const recall = Object.fromEntries([...HARM_CATEGORIES, 'profanity', 'jailbreak'].map((c) => [c, rate(c)]));
  const harmful = HARM_CATEGORIES.map((c) => tally.get(c) ?? { n: 0, hits: 0 });
  const n = harmful.reduce((s, t) => s + t.n, 0);
  return {
    recall,
    recallAllCategories: n === 0 ? 0 : round(harmful.reduce((s, t) => s + t.hits, 0) / n),
    lowSeverityDetected: Object.fromEntries(HARM_CATEGORIES.map((c) => [c, rate(`${c}_low_detected`)])),
    falsePositives: ((t) => ({
      n: t.n,
      blocked: t.n - t.hits,
      rate: t.n === 0 ? 0 : round(1 - t.rate),
      prompts: t.misses,
    }))(rate('benign_passed')),
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const all = loadEvalSet();
  const wanted = process.argv.length > 2 ? process.argv.slice(2) : SPLITS;
  const unknown = wanted.filter((s) => !SPLITS.includes(s as never));
  if (unknown.length > 0) throw new Error(`unknown split ${unknown.join(', ')} (splits: ${SPLITS.join(', ')})`);
  const report: Record<string, unknown> = { threshold: 'medium' };
  for (const split of wanted) report[split] = await evaluate(all.filter((p) => p.split === split));
  console.log(JSON.stringify(report, null, 2));
}
