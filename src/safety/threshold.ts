import type { Severity } from '../contract/annotations.ts';

/** The lowest severity that blocks: Azure's default blocks medium and high. */
export type Threshold = Exclude<Severity, 'safe'>;
export const THRESHOLDS: readonly Threshold[] = ['low', 'medium', 'high'];

const LEVELS: Severity[] = ['safe', 'low', 'medium', 'high'];

export interface ThresholdSettings {
  /** Threshold of deployments that set none. */
  threshold: Threshold;
  /** Per deployment name. */
  deploymentThresholds?: Map<string, Threshold>;
}

/**
 * The threshold for one request: the deployment's, else the default; gpt-image-1's
 * `moderation: low` lets only `high` block, as Azure's gpt-image-1 how-to describes.
 */
export function thresholdFor(settings: ThresholdSettings, context: { deployment: string; moderation: 'low' | 'auto' }): Threshold {
  if (context.moderation === 'low') return 'high';
  return settings.deploymentThresholds?.get(context.deployment) ?? settings.threshold;
}

export function blocksAt(threshold: Threshold, severity: Severity): boolean {
  return severity !== 'safe' && LEVELS.indexOf(severity) >= LEVELS.indexOf(threshold);
}
