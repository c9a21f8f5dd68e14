import type { Severity } from '../../contract/annotations.ts';

/** The five classes of the nsfwjs MobileNetV2 model; the probabilities sum to 1. */
export const NSFW_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'] as const;
export type NsfwClass = (typeof NSFW_CLASSES)[number];
export type NsfwProbabilities = Record<NsfwClass, number>;

/**
 * Azure's `sexual` severity from the classifier's probabilities, as data. "Explicit" is
 * P(Porn) + P(Hentai) (sexual acts or nudity, photographed or drawn); "suggestive" is P(Sexy)
 * (revealing but not explicit). The first row, from the top, whose explicit or suggestive bound is
 * reached gives the severity; none reached is `safe`. Drawing and Neutral never raise it.
 *
 * The bounds are chosen so that Azure's default threshold (medium) blocks an image the model
 * rates more likely explicit than not (≥ 0.5) or near-certainly suggestive (≥ 0.85), `low`
 * reports a real but minor signal, and `high` (all that blocks under `moderation: low`) needs a
 * confident explicit verdict.
 */
export const SEXUAL_SEVERITY_TABLE: readonly {
  severity: Exclude<Severity, 'safe'>;
  explicit: number;
  suggestive: number;
}[] = [
  { severity: 'high', explicit: 0.8, suggestive: Infinity },
  { severity: 'medium', explicit: 0.5, suggestive: 0.85 },
  { severity: 'low', explicit: 0.2, suggestive: 0.5 },
];

export function sexualSeverity(p: NsfwProbabilities): Severity {
  const explicit = p.Porn + p.Hentai;
  const row = SEXUAL_SEVERITY_TABLE.find((r) => explicit >= r.explicit || p.Sexy >= r.suggestive);
  return row?.severity ?? 'safe';
}
