import { HARM_CATEGORIES, type HarmCategory, type Severity, severityRank } from '../contract/annotations.ts';

/** The lowest severity that blocks: Azure's default blocks medium and high. */
export type Threshold = Exclude<Severity, 'safe'>;
export const THRESHOLDS: readonly Threshold[] = ['low', 'medium', 'high'];

/** A category's level: a threshold, or `off` (scored and annotated, never blocked). */
export type CategoryLevel = Threshold | 'off';
export const CATEGORY_LEVELS: readonly CategoryLevel[] = [...THRESHOLDS, 'off'];

/** One threshold for every category, or one per category (categories left out take the fallback). */
export type ThresholdSetting = Threshold | Partial<Record<HarmCategory, CategoryLevel>>;
export type Thresholds = Record<HarmCategory, CategoryLevel>;

/** What a deployment may set for itself; anything left out takes the service-wide setting. */
export interface DeploymentSafety {
  threshold?: ThresholdSetting;
  /** Block prompts with profanity (Azure's default only reports it). */
  blockProfanity?: boolean;
  /** Ids of the blocklists that apply; default all. */
  blocklists?: string[];
  /** Ids of the prompt classifiers that run beside the term lists; default all. */
  classifiers?: string[];
}

/** The service-wide safety settings and each deployment's own. */
export class SafetyPolicy {
  constructor(
    private readonly defaults: { threshold: ThresholdSetting; blockProfanity?: boolean },
    private readonly deployments: ReadonlyMap<string, DeploymentSafety> = new Map(),
  ) {}

  /**
   * Each category's level for one request: the deployment's, else the default's, else medium;
   * gpt-image-1's `moderation: low` lets only `high` block (categories that are `off` stay off), as
   * Azure's gpt-image-1 how-to describes.
   */
  thresholds(context: { deployment: string; moderation: 'low' | 'auto' }): Thresholds {
    const own = this.deployments.get(context.deployment)?.threshold;
    const levelOf = (category: HarmCategory): CategoryLevel => {
      const level = pick(own, category) ?? pick(this.defaults.threshold, category) ?? 'medium';
      return context.moderation === 'low' && level !== 'off' ? 'high' : level;
    };
    return Object.fromEntries(HARM_CATEGORIES.map((c) => [c, levelOf(c)])) as Thresholds;
  }

  blockProfanity(deployment: string): boolean {
    return this.deployments.get(deployment)?.blockProfanity ?? this.defaults.blockProfanity ?? false;
  }

  blocklists(deployment: string): readonly string[] | undefined {
    return this.deployments.get(deployment)?.blocklists;
  }

  classifiers(deployment: string): readonly string[] | undefined {
    return this.deployments.get(deployment)?.classifiers;
  }
}

function pick(setting: ThresholdSetting | undefined, category: HarmCategory): CategoryLevel | undefined {
  return typeof setting === 'string' ? setting : setting?.[category];
}

export function blocksAt(level: CategoryLevel, severity: Severity): boolean {
  return level !== 'off' && severity !== 'safe' && severityRank(severity) >= severityRank(level);
}
