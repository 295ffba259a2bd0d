// The maths of the diffusion process a spec declares, in float64: noise schedules, forward noising,
// the training target of each parameterisation, and one step of the DDPM and DDIM samplers, with
// classifier-free guidance. Per-timestep quantities are scalars; the functions over arrays are the
// reference the GPU's elementwise kernels are checked against.
// Sources: DDPM (Ho et al. 2020), improved DDPM (Nichol & Dhariwal 2021: cosine schedule, learned
// variance interpolation), DDIM (Song et al. 2021), v-prediction (Salimans & Ho 2022), LDM
// (scaled_linear), classifier-free guidance (Ho & Salimans 2021).
import type { DiffusionSpec, ScheduleSpec } from '../ir/diffusion-spec.ts';

export interface NoiseSchedule {
  readonly steps: number;
  readonly betas: Float64Array;
  /** ᾱ_t = prod_{s <= t} (1 - β_s) */
  readonly alphasCumprod: Float64Array;
}

export function noiseSchedule(s: ScheduleSpec): NoiseSchedule {
  const T = s.steps;
  const betas = new Float64Array(T);
  if (s.kind === 'linear') {
    for (let t = 0; t < T; t++) betas[t] = s.beta_start + ((s.beta_end - s.beta_start) * t) / Math.max(1, T - 1);
  } else if (s.kind === 'scaled_linear') {
    // linear in sqrt(β), as latent diffusion trains
    const [a, b] = [Math.sqrt(s.beta_start), Math.sqrt(s.beta_end)];
    for (let t = 0; t < T; t++) betas[t] = (a + ((b - a) * t) / Math.max(1, T - 1)) ** 2;
  } else if (s.kind === 'cosine') {
    // ᾱ(t) = f(t) / f(0), f(t) = cos²((t/T + s) / (1 + s) · π/2); β clipped at 0.999 near t = T
    const f = (t: number) => Math.cos(((t / T + s.s) / (1 + s.s)) * (Math.PI / 2)) ** 2;
    for (let t = 0; t < T; t++) betas[t] = Math.min(1 - f(t + 1) / f(t), 0.999);
  }
  const alphasCumprod = new Float64Array(T);
  let acc = 1;
  for (let t = 0; t < T; t++) { acc *= 1 - betas[t]; alphasCumprod[t] = acc; }
  return { steps: T, betas, alphasCumprod };
}

/** ᾱ at t; t = -1 is the clean sample (ᾱ = 1). */
export const alphaBar = (s: NoiseSchedule, t: number) => (t < 0 ? 1 : s.alphasCumprod[t]);

/** x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) eps */
export function addNoise(s: NoiseSchedule, x0: ArrayLike<number>, eps: ArrayLike<number>, t: number): Float64Array {
  const [a, b] = [Math.sqrt(alphaBar(s, t)), Math.sqrt(1 - alphaBar(s, t))];
  return Float64Array.from(x0, (x, i) => a * x + b * eps[i]);
}

export type Prediction = DiffusionSpec['predict']['target'];

/** What the model learns to output: eps, v = sqrt(ᾱ) eps - sqrt(1 - ᾱ) x0, or x0. */
export function trainingTarget(predict: Prediction, s: NoiseSchedule, x0: ArrayLike<number>, eps: ArrayLike<number>, t: number): Float64Array {
  if (predict === 'epsilon') return Float64Array.from(eps);
  if (predict === 'x0') return Float64Array.from(x0);
  const [a, b] = [Math.sqrt(alphaBar(s, t)), Math.sqrt(1 - alphaBar(s, t))];
  return Float64Array.from(x0, (x, i) => a * eps[i] - b * x);
}

/** The clean sample and the noise a model output implies at x_t. */
export function splitPrediction(predict: Prediction, s: NoiseSchedule, xt: ArrayLike<number>, out: ArrayLike<number>, t: number): { x0: Float64Array; eps: Float64Array } {
  const [a, b] = [Math.sqrt(alphaBar(s, t)), Math.sqrt(1 - alphaBar(s, t))];
  if (predict === 'epsilon') return { eps: Float64Array.from(out), x0: Float64Array.from(xt, (x, i) => (x - b * out[i]) / a) };
  if (predict === 'x0') return { x0: Float64Array.from(out), eps: Float64Array.from(xt, (x, i) => (x - a * out[i]) / b) };
  // v: x0 = a x_t - b v, eps = b x_t + a v (a² + b² = 1)
  return { x0: Float64Array.from(xt, (x, i) => a * x - b * out[i]), eps: Float64Array.from(xt, (x, i) => b * x + a * out[i]) };
}

/** The timesteps a sampler visits, from the noisiest down: `steps` evenly spaced (0 or T: every one). */
export function samplerTimesteps(s: NoiseSchedule, steps: number): number[] {
  const n = steps <= 0 || steps >= s.steps ? s.steps : steps;
  const ts = Array.from({ length: n }, (_, i) => Math.floor((i * s.steps) / n));
  return ts.reverse();
}

/**
 * One DDIM step from t to tPrev (tPrev = -1: the end): x_prev = sqrt(ᾱ') x0 + sqrt(1 - ᾱ' - σ²) eps + σ z,
 * σ = eta sqrt((1 - ᾱ') / (1 - ᾱ) (1 - ᾱ / ᾱ')). eta = 0 is deterministic; eta = 1 matches DDPM's variance.
 */
export function ddimStep(s: NoiseSchedule, x0: ArrayLike<number>, eps: ArrayLike<number>, t: number, tPrev: number,
  eta: number, noise?: ArrayLike<number>): Float64Array {
  const [ab, abPrev] = [alphaBar(s, t), alphaBar(s, tPrev)];
  const sigma = eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
  const [a, b] = [Math.sqrt(abPrev), Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma))];
  if (sigma > 0 && !noise) throw new Error('ddimStep: eta > 0 needs noise');
  return Float64Array.from(x0, (x, i) => a * x + b * eps[i] + (sigma > 0 ? sigma * noise![i] : 0));
}

/**
 * The DDPM posterior q(x_{t-1} | x_t, x0): mean and log variance. With a learned variance output v in
 * [-1, 1] (improved DDPM), log σ² = f log β_t + (1 - f) log β̃_t with f = (v + 1) / 2; else β̃_t.
 */
export function ddpmPosterior(s: NoiseSchedule, xt: ArrayLike<number>, x0: ArrayLike<number>, t: number,
  varianceOut?: ArrayLike<number>): { mean: Float64Array; logVariance: Float64Array } {
  const [ab, abPrev, beta] = [alphaBar(s, t), alphaBar(s, t - 1), s.betas[t]];
  const c0 = (Math.sqrt(abPrev) * beta) / (1 - ab);
  const ct = (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - ab);
  const tilde = ((1 - abPrev) / (1 - ab)) * beta;
  // β̃_0 is 0: its log is clipped to β̃_1's, as improved DDPM does
  const logTilde = Math.log(t === 0 ? ((1 - alphaBar(s, 0)) / (1 - alphaBar(s, 1))) * s.betas[1] : tilde);
  const mean = Float64Array.from(x0, (x, i) => c0 * x + ct * xt[i]);
  const logVariance = Float64Array.from(x0, (_, i) => {
    if (!varianceOut) return logTilde;
    const f = (varianceOut[i] + 1) / 2;
    return f * Math.log(beta) + (1 - f) * logTilde;
  });
  return { mean, logVariance };
}

/** One DDPM step: the posterior mean plus its noise (none at t = 0). */
export function ddpmStep(s: NoiseSchedule, xt: ArrayLike<number>, x0: ArrayLike<number>, t: number, noise: ArrayLike<number>,
  varianceOut?: ArrayLike<number>): Float64Array {
  const { mean, logVariance } = ddpmPosterior(s, xt, x0, t, varianceOut);
  if (t === 0) return mean;
  return Float64Array.from(mean, (m, i) => m + Math.exp(0.5 * logVariance[i]) * noise[i]);
}

/** Classifier-free guidance: uncond + scale (cond - uncond). */
export function guide(cond: ArrayLike<number>, uncond: ArrayLike<number>, scale: number): Float64Array {
  return Float64Array.from(cond, (c, i) => uncond[i] + scale * (c - uncond[i]));
}
