import { type HarmCategory, SEVERITIES, type Severity, severityRank } from '../contract/annotations.ts';

/**
 * What one prompt classifier found. Categories it does not judge are left out (the combined
 * verdict takes the highest severity any classifier gave each category).
 */
export interface ClassifierScores {
  severities: Partial<Record<HarmCategory, Severity>>;
  /** Set by classifiers that look for attempts to get around the safety system. */
  jailbreak?: boolean;
  /** Set by classifiers that look for swearing. */
  profanity?: boolean;
}

/**
 * A prompt classifier behind the rule-based filter: an ONNX text-classification model, an
 * external moderation endpoint … The filter runs every classifier a deployment names, gives each
 * its timeout through `signal`, and applies the failure policy when one throws.
 */
export interface PromptClassifier {
  /** The id operators give it in the configuration; annotation errors and logs name it. */
  readonly id: string;
  /** Scores one prompt. Must stop promptly when `signal` aborts (timeout or shutdown). */
  classify(text: string, signal: AbortSignal): Promise<ClassifierScores>;
  /** Loads whatever it needs (a model); the first classify() waits for it if not called. */
  load?(): Promise<void>;
  close?(): Promise<void>;
}

/** What happens to a prompt when a classifier fails or times out. */
export type ClassifierFailurePolicy = 'block' | 'allow';

/** Probability (0–1) of a harm label → severity, at the operator's cut points. */
export interface SeverityCutPoints {
  low: number;
  medium: number;
  high: number;
}
export const DEFAULT_CUT_POINTS: SeverityCutPoints = { low: 0.3, medium: 0.5, high: 0.8 };

/** Numbers with 0 ≤ low ≤ medium ≤ high ≤ 1. */
export function validCutPoints({ low, medium, high }: SeverityCutPoints): boolean {
  return (
    [low, medium, high].every((c) => typeof c === 'number') && 0 <= low && low <= medium && medium <= high && high <= 1
  );
}

/** Throws on a value that is not a probability, so a broken classifier meets the failure policy. */
export function severityFromProbability(p: number, cuts: SeverityCutPoints = DEFAULT_CUT_POINTS): Severity {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1))
    throw new Error(`classifier score ${String(p)} is not a probability`);
  if (p < cuts.low) return 'safe';
  if (p >= cuts.high) return 'high';
  if (p >= cuts.medium) return 'medium';
  return 'low';
}

export function higherSeverity(a: Severity | undefined, b: Severity | undefined): Severity {
  return SEVERITIES[Math.max(severityRank(a ?? 'safe'), severityRank(b ?? 'safe'))]!;
}

/**
 * Label names of public moderation models and APIs → Azure's categories. Subcategories
 * ("hate/threatening", "sexual/minors", "self-harm/intent") count for their parent; labels about
 * other harms (harassment, insults) are not mapped by default.
 */
export function categoryOfLabel(label: string): HarmCategory | undefined {
  const head = label
    .toLowerCase()
    .split('/')[0]!
    .replace(/[\s-]+/g, '_');
  if (head === 'hate' || head === 'sexual' || head === 'violence' || head === 'self_harm') return head;
  if (head === 'selfharm') return 'self_harm';
  return undefined;
}
