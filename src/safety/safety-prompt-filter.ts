import { type FilterError, HARM_CATEGORIES, type PromptFilterResults, type Severity } from '../contract/annotations.ts';
import { abortable } from '../runtime/abort.ts';
import { Blocklists } from './blocklists.ts';
import {
  type ClassifierFailurePolicy,
  type ClassifierScores,
  higherSeverity,
  type PromptClassifier,
} from './classifier.ts';
import { Lexicon } from './lexicon.ts';
import { blocksAt, type SafetyPolicy } from './policy.ts';
import type { PromptFilter, PromptFilterContext, PromptVerdict } from './prompt-filter.ts';

/** A classifier as a deployment runs it: how long it may take and what its failure means. */
export interface ClassifierBinding {
  classifier: PromptClassifier;
  timeoutMs: number;
  onFailure: ClassifierFailurePolicy;
}

export interface SafetyPromptFilterOptions {
  policy: SafetyPolicy;
  /** The embedded term lists (lexicon.json) unless given. */
  lexicon?: Lexicon;
  blocklists?: Blocklists;
  /** Every configured classifier; a deployment runs those its policy names (default all). */
  classifiers?: ClassifierBinding[];
  log?: { warn(object: object, message: string): void };
}

/**
 * The prompt filter: the rule-based term lists (always), the operator blocklists, and any
 * classifiers the deployment adds, combined by taking the highest severity each category got.
 * A category blocks at or above the deployment's level for it; jailbreak attempts always block;
 * profanity blocks only where the policy says so (Azure's default reports it). A classifier that
 * throws or outlives its timeout follows its failure policy, and the annotation carries `error`
 * as Azure's does when its filter fails.
 */
export class SafetyPromptFilter implements PromptFilter {
  private readonly lexicon: Lexicon;
  private readonly blocklists: Blocklists;
  private readonly classifiers: ClassifierBinding[];

  constructor(private readonly options: SafetyPromptFilterOptions) {
    this.lexicon = options.lexicon ?? Lexicon.load();
    this.blocklists = options.blocklists ?? new Blocklists([]);
    this.classifiers = options.classifiers ?? [];
  }

  async check(prompt: string, context: PromptFilterContext): Promise<PromptVerdict> {
    const { policy } = this.options;
    const named = policy.classifiers(context.deployment);
    const bindings =
      named === undefined ? this.classifiers : this.classifiers.filter((b) => named.includes(b.classifier.id));
    const outcomes = await Promise.all(bindings.map((b) => this.run(b, prompt, context.deployment)));

    const scores = [
      this.lexicon.score(prompt) as ClassifierScores,
      ...outcomes.flatMap((o) => ('scores' in o ? [o.scores] : [])),
    ];
    const failures = outcomes.flatMap((o) => ('failure' in o ? [o] : []));
    const severityOf = (c: (typeof HARM_CATEGORIES)[number]): Severity =>
      scores.reduce<Severity>((s, x) => higherSeverity(s, x.severities[c]), 'safe');
    const thresholds = policy.thresholds(context);
    const jailbreak = scores.some((s) => s.jailbreak === true);
    const profanity = scores.some((s) => s.profanity === true);
    const blockProfanity = profanity && policy.blockProfanity(context.deployment);
    const listed = this.blocklists.match(prompt, policy.blocklists(context.deployment));

    const results: PromptFilterResults = {
      ...(Object.fromEntries(
        HARM_CATEGORIES.map((c) => {
          const severity = severityOf(c);
          return [c, { filtered: blocksAt(thresholds[c], severity), severity }];
        }),
      ) as Pick<PromptFilterResults, (typeof HARM_CATEGORIES)[number]>),
      profanity: { filtered: blockProfanity, detected: profanity },
      jailbreak: { filtered: jailbreak, detected: jailbreak },
      custom_blocklists: { filtered: listed.length > 0, details: listed },
      ...(failures.length === 0 ? {} : { error: filterError(failures) }),
    };
    const blocked =
      HARM_CATEGORIES.some((c) => results[c].filtered) ||
      jailbreak ||
      blockProfanity ||
      listed.length > 0 ||
      failures.some((f) => f.binding.onFailure === 'block');
    return { blocked, results };
  }

  private async run(
    binding: ClassifierBinding,
    prompt: string,
    deployment: string,
  ): Promise<{ scores: ClassifierScores } | Failure> {
    const { classifier, timeoutMs } = binding;
    const controller = new AbortController();
    const { signal } = controller;
    // A timer of our own, not AbortSignal.timeout(): that one's timer does not keep the process alive.
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      // Raced against the signal too, so a classifier that ignores it still cannot hold the request.
      return { scores: await abortable(classifier.classify(prompt, signal), signal) };
    } catch (error) {
      const message = signal.aborted ? (signal.reason as Error).message : (error as Error).message;
      this.options.log?.warn(
        { classifier: classifier.id, deployment, policy: binding.onFailure, err: message },
        'prompt classifier failed',
      );
      return { failure: message, binding };
    } finally {
      clearTimeout(timer);
    }
  }
}

interface Failure {
  failure: string;
  binding: ClassifierBinding;
}

/** One `error` for the annotation, naming each classifier that failed and what became of the prompt. */
function filterError(failures: Failure[]): FilterError {
  const blocked = failures.some((f) => f.binding.onFailure === 'block');
  const what = failures.map((f) => `classifier "${f.binding.classifier.id}" failed: ${f.failure}`).join('; ');
  return {
    code: 'content_filter_error',
    message: blocked
      ? `The prompt could not be filtered and was refused (${what}).`
      : `The prompt was not fully filtered (${what}).`,
  };
}
