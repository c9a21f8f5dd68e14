/**
 * The σ tables shared by the Euler schedulers
 * (scheduling_euler_discrete.py and scheduling_euler_ancestral_discrete.py, whose code is
 * "Copied from" one another for these parts).
 */
const f32 = Math.fround;

/** σ_t = √((1 − ᾱ_t)/ᾱ_t) for every training timestep, ascending in t, float32 as torch computes it. */
export function trainingSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/**
 * np.interp(timesteps, arange(T), σ_train), rounded to float32 as `.astype(np.float32)` does.
 * Outside [0, T−1] numpy clamps to the end values.
 */
export function interpolateSigmas(timesteps: readonly number[], train: Float32Array): number[] {
  const last = train.length - 1;
  return timesteps.map((t) => {
    if (t <= 0) return train[0] as number;
    if (t >= last) return train[last] as number;
    const j = Math.floor(t);
    const [low, high] = [train[j] as number, train[j + 1] as number];
    return t === j ? low : f32((high - low) * (t - j) + low);
  });
}

/** `0.25·ln σ`: the timesteps of `timestep_type: "continuous"` with v_prediction (EDM-style UNets). */
export function continuousTimesteps(sigmas: readonly number[]): number[] {
  return sigmas.map((s) => f32(0.25 * f32(Math.log(s))));
}
