/**
 * The scheduler config read from a diffusers `scheduler/scheduler_config.json`.
 *
 * Keys keep diffusers' snake_case spelling on purpose: the object is that file, validated and with
 * diffusers' per-class defaults filled in, so `config.timestep_spacing` here reads exactly like
 * `self.config.timestep_spacing` in the diffusers source it is compared with. Unknown keys
 * (`_diffusers_version`, `skip_prk_steps`, `sample_max_value` …) are ignored, as diffusers ignores
 * them; options that would change the maths and are not implemented are refused by name.
 */

export const SCHEDULER_CLASS_NAMES = [
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'DDIMScheduler',
  'LCMScheduler',
  // Not implemented; index.ts maps their configs onto a substitute (see createScheduler).
  'PNDMScheduler',
  'LMSDiscreteScheduler',
] as const;

export type SchedulerClassName = (typeof SCHEDULER_CLASS_NAMES)[number];
export type BetaSchedule = 'linear' | 'scaled_linear';
/** `sample` is accepted where diffusers implements it (not by EulerAncestral). */
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';

export interface SchedulerConfig {
  _class_name: SchedulerClassName;
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  /** Replaces beta_start/beta_end/beta_schedule when given (diffusers checks it first). */
  trained_betas: number[] | null;
  prediction_type: PredictionType;
  /** Ignored by LCM, whose schedule comes from `original_inference_steps`. */
  timestep_spacing: TimestepSpacing;
  /** Added to `leading` timesteps only (diffusers ignores it for linspace and trailing). */
  steps_offset: number;
  rescale_betas_zero_snr: boolean;
  /** DDIM, LCM (and PNDM): ᾱ "after" the last step is 1, else ᾱ_0. */
  set_alpha_to_one: boolean;
  /** DDIM, LCM: clamp x0 to ±clip_sample_range. */
  clip_sample: boolean;
  clip_sample_range: number;
  /** Euler: `continuous` with v_prediction makes timesteps 0.25·ln σ (EDM-style models). */
  timestep_type: 'discrete' | 'continuous';
  /** Euler: the σ appended after the last step. */
  final_sigmas_type: 'zero' | 'sigma_min';
  /** LCM: length of the distillation schedule the inference timesteps are picked from. */
  original_inference_steps: number;
  /** LCM: t is multiplied by this in the boundary-condition scalings c_skip and c_out. */
  timestep_scaling: number;
}

/** A config that cannot be used, naming the offending key of scheduler_config.json. */
export class SchedulerConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`scheduler config: ${field} ${problem}`);
    this.name = 'SchedulerConfigError';
  }
}

type Defaults = Omit<SchedulerConfig, '_class_name'>;

/** The `__init__` defaults of EulerDiscreteScheduler, shared by most classes. */
const BASE_DEFAULTS: Defaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  set_alpha_to_one: true,
  clip_sample: false,
  clip_sample_range: 1,
  timestep_type: 'discrete',
  final_sigmas_type: 'zero',
  original_inference_steps: 50,
  timestep_scaling: 10,
};

/** Where a class's `__init__` defaults differ from BASE_DEFAULTS (scheduling_<name>.py). */
const CLASS_DEFAULTS: Record<SchedulerClassName, Partial<Defaults>> = {
  EulerDiscreteScheduler: {},
  EulerAncestralDiscreteScheduler: {},
  LMSDiscreteScheduler: {},
  DDIMScheduler: { timestep_spacing: 'leading', clip_sample: true, set_alpha_to_one: true },
  PNDMScheduler: { timestep_spacing: 'leading', set_alpha_to_one: false },
  LCMScheduler: {
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    timestep_spacing: 'leading',
    set_alpha_to_one: true,
  },
};

/** Options diffusers offers that change the schedule; refused while easel does not implement them. */
const REFUSED_WHEN_TRUE: Record<string, string> = {
  use_karras_sigmas: 'is not supported yet (Karras σ schedule); use an export with use_karras_sigmas false',
  use_exponential_sigmas: 'is not supported (exponential σ schedule)',
  use_beta_sigmas: 'is not supported (beta σ schedule)',
  thresholding: 'is not supported (dynamic thresholding is meant for pixel-space models)',
};

type Json = Record<string, unknown>;

/** Validate a parsed scheduler_config.json and fill in diffusers' defaults for its class. */
export function parseSchedulerConfig(json: unknown): SchedulerConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SchedulerConfigError('(root)', 'must be a JSON object');
  }
  const raw = json as Json;
  const className = readClassName(raw);
  const d: Defaults = { ...BASE_DEFAULTS, ...CLASS_DEFAULTS[className] };
  refuseUnsupported(raw);
  const config: SchedulerConfig = {
    _class_name: className,
    num_train_timesteps: readInt(raw, 'num_train_timesteps', d.num_train_timesteps, 2),
    beta_start: readBeta(raw, 'beta_start', d.beta_start),
    beta_end: readBeta(raw, 'beta_end', d.beta_end),
    beta_schedule: readEnum(raw, 'beta_schedule', d.beta_schedule, ['linear', 'scaled_linear']),
    trained_betas: readTrainedBetas(raw),
    prediction_type: readEnum(raw, 'prediction_type', d.prediction_type, ['epsilon', 'v_prediction', 'sample']),
    timestep_spacing: readEnum(raw, 'timestep_spacing', d.timestep_spacing, ['linspace', 'leading', 'trailing']),
    steps_offset: readInt(raw, 'steps_offset', d.steps_offset, 0),
    rescale_betas_zero_snr: readBool(raw, 'rescale_betas_zero_snr', d.rescale_betas_zero_snr),
    set_alpha_to_one: readBool(raw, 'set_alpha_to_one', d.set_alpha_to_one),
    clip_sample: readBool(raw, 'clip_sample', d.clip_sample),
    clip_sample_range: readPositive(raw, 'clip_sample_range', d.clip_sample_range),
    timestep_type: readEnum(raw, 'timestep_type', d.timestep_type, ['discrete', 'continuous']),
    final_sigmas_type: readEnum(raw, 'final_sigmas_type', d.final_sigmas_type, ['zero', 'sigma_min']),
    original_inference_steps: readInt(raw, 'original_inference_steps', d.original_inference_steps, 1),
    timestep_scaling: readPositive(raw, 'timestep_scaling', d.timestep_scaling),
  };
  checkConsistency(config);
  return config;
}

function readClassName(raw: Json): SchedulerClassName {
  const value = raw['_class_name'];
  if (typeof value !== 'string')
    throw new SchedulerConfigError('_class_name', 'must be a string naming the scheduler class');
  if (!(SCHEDULER_CLASS_NAMES as readonly string[]).includes(value)) {
    throw new SchedulerConfigError(
      '_class_name',
      `"${value}" is not supported (supported: ${SCHEDULER_CLASS_NAMES.join(', ')})`,
    );
  }
  return value as SchedulerClassName;
}

function refuseUnsupported(raw: Json): void {
  for (const [field, problem] of Object.entries(REFUSED_WHEN_TRUE)) {
    if (raw[field] === true) throw new SchedulerConfigError(field, `true ${problem}`);
  }
  const interpolation = raw['interpolation_type'];
  if (interpolation !== undefined && interpolation !== null && interpolation !== 'linear') {
    throw new SchedulerConfigError('interpolation_type', `"${String(interpolation)}" is not supported (only "linear")`);
  }
  if (raw['beta_schedule'] === 'squaredcos_cap_v2') {
    throw new SchedulerConfigError(
      'beta_schedule',
      '"squaredcos_cap_v2" is not supported (only "linear" and "scaled_linear")',
    );
  }
}

function checkConsistency(config: SchedulerConfig): void {
  const betas = config.trained_betas;
  if (betas !== null && betas.length !== config.num_train_timesteps) {
    throw new SchedulerConfigError(
      'trained_betas',
      `has ${betas.length} values but num_train_timesteps is ${config.num_train_timesteps}`,
    );
  }
  if (config._class_name === 'LCMScheduler' && config.original_inference_steps > config.num_train_timesteps) {
    throw new SchedulerConfigError(
      'original_inference_steps',
      `must not exceed num_train_timesteps (${config.num_train_timesteps})`,
    );
  }
}

/** JSON null means "not set" in diffusers configs (`"trained_betas": null`), so it takes the default. */
function present(raw: Json, field: string): unknown {
  const value = raw[field];
  return value === null ? undefined : value;
}

function readInt(raw: Json, field: string, fallback: number, min: number): number {
  const value = present(raw, field);
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new SchedulerConfigError(field, `must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function readPositive(raw: Json, field: string, fallback: number): number {
  const value = present(raw, field);
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SchedulerConfigError(field, `must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function readBeta(raw: Json, field: string, fallback: number): number {
  const value = present(raw, field);
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new SchedulerConfigError(field, `must be a number between 0 and 1 (exclusive), got ${JSON.stringify(value)}`);
  }
  return value;
}

function readBool(raw: Json, field: string, fallback: boolean): boolean {
  const value = present(raw, field);
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new SchedulerConfigError(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function readEnum<T extends string>(raw: Json, field: string, fallback: T, allowed: readonly T[]): T {
  const value = present(raw, field);
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new SchedulerConfigError(
      field,
      `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

function readTrainedBetas(raw: Json): number[] | null {
  const value = present(raw, 'trained_betas');
  if (value === undefined) return null;
  if (!Array.isArray(value) || !value.every((b) => typeof b === 'number' && b > 0 && b < 1)) {
    throw new SchedulerConfigError('trained_betas', 'must be an array of numbers between 0 and 1 (exclusive)');
  }
  return value as number[];
}
