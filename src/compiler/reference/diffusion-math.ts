// The maths of the diffusion process a spec declares, in float64: noise schedules, forward noising,
// the training target of each parameterisation, and one step of the DDPM and DDIM samplers, with
// classifier-free guidance. Per-timestep quantities are scalars; the functions over arrays are the
// reference the GPU's elementwise kernels are checked against.
// Sources: DDPM (Ho et al. 2020), improved DDPM (Nichol & Dhariwal 2021: cosine schedule, learned
// variance interpolation), DDIM (Song et al. 2021), v-prediction (Salimans & Ho 2022), LDM
// (scaled_linear), classifier-free guidance (Ho & Salimans 2021), rectified flow (Liu et al. 2022;
// Esser et al. 2024, SD3: the shifted timesteps; Open-Sora 1.2).
import type { DiffusionSpec, ScheduleSpec } from '../ir/diffusion-spec.ts';

export interface NoiseSchedule {
  readonly steps: number;
  readonly betas: Float64Array;
  /** ᾱ_t = prod_{s <= t} (1 - β_s) */
  readonly alphasCumprod: Float64Array;
  /**
   * Rectified flow: t' of each level (index i is level k = i + 1, t = k / steps, shifted); betas and
   * alphasCumprod are then NaN (the DDPM quantities do not exist). Absent for the DDPM schedules.
   */
  readonly flow?: Float64Array;
}

/** SD3's timestep shift: t' = shift t / (1 + (shift − 1) t) (shift 1: t itself). */
export const shiftTime = (t: number, shift: number) => (shift * t) / (1 + (shift - 1) * t);

export function noiseSchedule(s: ScheduleSpec): NoiseSchedule {
  const T = s.steps;
  if (s.kind === 'rectified_flow') {
    const flow = Float64Array.from({ length: T }, (_, i) => shiftTime((i + 1) / T, s.shift));
    return { steps: T, betas: new Float64Array(T).fill(NaN), alphasCumprod: new Float64Array(T).fill(NaN), flow };
  }
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

/**
 * The coefficients (a, b) of x_t = a x0 + b ε at level index t (-1: the clean sample, (1, 0)):
 * (sqrt ᾱ_t, sqrt(1 − ᾱ_t)), or under rectified flow (1 − t', t').
 */
export function noisingCoefficients(s: NoiseSchedule, t: number): [number, number] {
  if (s.flow) return t < 0 ? [1, 0] : [1 - s.flow[t], s.flow[t]];
  return [Math.sqrt(alphaBar(s, t)), Math.sqrt(1 - alphaBar(s, t))];
}

/** x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) eps; rectified flow: (1 − t') x0 + t' eps */
export function addNoise(s: NoiseSchedule, x0: ArrayLike<number>, eps: ArrayLike<number>, t: number): Float64Array {
  const [a, b] = noisingCoefficients(s, t);
  return Float64Array.from(x0, (x, i) => a * x + b * eps[i]);
}

export type Prediction = DiffusionSpec['predict']['target'];

/**
 * What the model learns to output: eps, v = sqrt(ᾱ) eps - sqrt(1 - ᾱ) x0, or x0. Rectified flow's v
 * is the velocity d x_t / dt = eps − x0 (Open-Sora, SD3), not DDPM's v.
 */
export function trainingTarget(predict: Prediction, s: NoiseSchedule, x0: ArrayLike<number>, eps: ArrayLike<number>, t: number): Float64Array {
  if (s.flow) {
    if (predict !== 'v') throw new Error('trainingTarget: rectified flow predicts v');
    return Float64Array.from(x0, (x, i) => eps[i] - x);
  }
  if (predict === 'epsilon') return Float64Array.from(eps);
  if (predict === 'x0') return Float64Array.from(x0);
  const [a, b] = [Math.sqrt(alphaBar(s, t)), Math.sqrt(1 - alphaBar(s, t))];
  return Float64Array.from(x0, (x, i) => a * eps[i] - b * x);
}

/** The clean sample and the noise a model output implies at x_t. */
export function splitPrediction(predict: Prediction, s: NoiseSchedule, xt: ArrayLike<number>, out: ArrayLike<number>, t: number): { x0: Float64Array; eps: Float64Array } {
  if (s.flow) {
    // rectified flow's velocity v = eps − x0: x0 = x_t − t' v, eps = x_t + (1 − t') v
    if (predict !== 'v') throw new Error('splitPrediction: rectified flow predicts v');
    const tf = s.flow[t];
    return { x0: Float64Array.from(xt, (x, i) => x - tf * out[i]), eps: Float64Array.from(xt, (x, i) => x + (1 - tf) * out[i]) };
  }
  const [a, b] = [Math.sqrt(alphaBar(s, t)), Math.sqrt(1 - alphaBar(s, t))];
  if (predict === 'epsilon') return { eps: Float64Array.from(out), x0: Float64Array.from(xt, (x, i) => (x - b * out[i]) / a) };
  if (predict === 'x0') return { x0: Float64Array.from(out), eps: Float64Array.from(xt, (x, i) => (x - a * out[i]) / b) };
  // v: x0 = a x_t - b v, eps = b x_t + a v (a² + b² = 1)
  return { x0: Float64Array.from(xt, (x, i) => a * x - b * out[i]), eps: Float64Array.from(xt, (x, i) => b * x + a * out[i]) };
}

/** The timesteps a sampler visits, from the noisiest down: `steps` evenly spaced (0 or T: every one). */
export function samplerTimesteps(s: NoiseSchedule, steps: number): number[] {
  const n = steps <= 0 || steps >= s.steps ? s.steps : steps;
  // rectified flow: levels round(T (n − i) / n), i = 0 .. n − 1, so the first is t = 1 (x_T is pure
  // noise there exactly) and the rest as evenly spaced as the levels allow (Open-Sora's 1 − i / n)
  if (s.flow) return Array.from({ length: n }, (_, i) => Math.round((s.steps * (n - i)) / n) - 1);
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
 * One Euler step of the rectified-flow ODE from level t to tPrev (-1: the end, t' = 0):
 * x' = x_t + (t'_prev − t'_t) v. It is DDIM's eta-0 update in the flow's parametrisation:
 * (1 − t'_prev) x̂0 + t'_prev ε̂ with x̂0 = x_t − t' v, ε̂ = x_t + (1 − t') v.
 */
export function eulerStep(s: NoiseSchedule, xt: ArrayLike<number>, v: ArrayLike<number>, t: number, tPrev: number): Float64Array {
  if (!s.flow) throw new Error('eulerStep: the Euler sampler needs a rectified_flow schedule');
  const dt = (tPrev < 0 ? 0 : s.flow[tPrev]) - s.flow[t];
  return Float64Array.from(xt, (x, i) => x + dt * v[i]);
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

// ---------------------------------------------------------------- training losses
// Improved DDPM / DiT (learned range variance, loss type MSE): loss = Σ weight · term over
//   mse                   mean over the prediction channels of (prediction − target)²
//   vlb                   mean over the batch of the per-entry mean, in bits, of KL(q(x_{t−1} | x_t, x0) ‖ p(x_{t−1} | x_t))
//                         for t > 0, and at t = 0 of the discretized Gaussian decoder NLL of x0; p's mean
//                         comes from the frozen (stop-gradient) noise prediction, so vlb trains only the variance
//   temporal_consistency  mean over (b, c, t − 1, h, w) of |x̂[t+1] − x̂[t]|, x̂ = clip(predicted x0, −1, 1)
// These are the definitions written out directly; codegen/kernels/diffusion-loss.ts computes the same
// in forms that stay accurate in f32.

/** The posterior q(x_{t−1} | x_t, x0)'s mean coefficients and its log variance, clipped at t = 0 to t = 1's. */
export function posteriorCoefficients(s: NoiseSchedule, t: number): { meanX0: number; meanXt: number; logVarianceClipped: number; logBeta: number } {
  const [ab, abPrev, beta] = [alphaBar(s, t), alphaBar(s, t - 1), s.betas[t]];
  const tilde = (k: number) => ((1 - alphaBar(s, k - 1)) / (1 - alphaBar(s, k))) * s.betas[k];
  return {
    meanX0: (Math.sqrt(abPrev) * beta) / (1 - ab),
    meanXt: (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - ab),
    // β̃_0 is 0: its log is clipped to β̃_1's, as improved DDPM does
    logVarianceClipped: Math.log(t === 0 ? tilde(1) : tilde(t)),
    logBeta: Math.log(beta),
  };
}

/** KL(N(m1, e^lv1) ‖ N(m2, e^lv2)) in nats, and its derivative with respect to lv2. */
export function normalKl(m1: number, lv1: number, m2: number, lv2: number): { kl: number; dLv2: number } {
  const d2 = (m1 - m2) ** 2;
  return {
    kl: 0.5 * (-1 + lv2 - lv1 + Math.exp(lv1 - lv2) + d2 * Math.exp(-lv2)),
    dLv2: 0.5 * (1 - Math.exp(lv1 - lv2) - d2 * Math.exp(-lv2)),
  };
}

const TANH_CDF_A = Math.sqrt(2 / Math.PI);
const TANH_CDF_B = 0.044715;

/** The standard normal CDF as improved DDPM approximates it: (1 + tanh(sqrt(2/π) (x + 0.044715 x³))) / 2. */
export const approxStandardNormalCdf = (x: number) => 0.5 * (1 + Math.tanh(TANH_CDF_A * (x + TANH_CDF_B * x ** 3)));
/** Its derivative. */
export const approxStandardNormalPdf = (x: number) => 0.5 * (1 - Math.tanh(TANH_CDF_A * (x + TANH_CDF_B * x ** 3)) ** 2) * TANH_CDF_A * (1 + 3 * TANH_CDF_B * x * x);

/** Half the width of an 8-bit level of data scaled to [−1, 1]: the decoder's bin is x0 ± this. */
export const DECODER_HALF_BIN = 1 / 255;
/** The floor of every probability before its logarithm (improved DDPM). */
export const DECODER_MIN_PROB = 1e-12;

/**
 * log P(x) of the bin [x − 1/255, x + 1/255] under N(mean, e^(2 logScale)) with the approximate CDF,
 * the bins at x < −0.999 and x > 0.999 extended to −∞ and +∞; every probability floored at 1e-12
 * (where it is, the derivative is 0). Returns the value and its derivative with respect to logScale.
 */
export function discretizedGaussianLogLikelihood(x: number, mean: number, logScale: number): { logp: number; dLogScale: number } {
  const inv = Math.exp(-logScale);
  const [zp, zm] = [inv * (x - mean + DECODER_HALF_BIN), inv * (x - mean - DECODER_HALF_BIN)];
  // dz/dlogScale = −z
  let p: number, dp: number;
  if (x < -0.999) { p = approxStandardNormalCdf(zp); dp = -approxStandardNormalPdf(zp) * zp; }
  else if (x > 0.999) { p = 1 - approxStandardNormalCdf(zm); dp = approxStandardNormalPdf(zm) * zm; }
  else { p = approxStandardNormalCdf(zp) - approxStandardNormalCdf(zm); dp = -approxStandardNormalPdf(zp) * zp + approxStandardNormalPdf(zm) * zm; }
  if (!(p > DECODER_MIN_PROB)) return { logp: Math.log(DECODER_MIN_PROB), dLogScale: 0 };
  return { logp: Math.log(p), dLogScale: dp / p };
}

export type LossTerm = DiffusionSpec['loss'][number]['term'];

export interface DiffusionLoss {
  /** Σ weight · term */
  readonly total: number;
  /** each term's unweighted value */
  readonly terms: ReadonlyMap<LossTerm, number>;
  /** d total / d output, in the output's layout */
  readonly grad: Float64Array;
}

/**
 * The training loss of one batch and its gradient with respect to the model output. `axes` are the
 * noisy input's (batch first); the output has the same axes in the same order, with twice the
 * channels when sigma is learned (noise prediction, then the variance interpolation value v).
 * x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) noise per batch entry with t[b]. `frozenEps` replaces the
 * noise prediction in vlb's model mean (its stop-gradient), for finite-difference checks.
 */
export function diffusionLoss(d: Pick<DiffusionSpec, 'predict' | 'loss'>, s: NoiseSchedule, axes: readonly (readonly [string, number])[],
  out: ArrayLike<number>, x0: ArrayLike<number>, noise: ArrayLike<number>, t: ArrayLike<number>, frozenEps?: ArrayLike<number>): DiffusionLoss {
  const shape = axes.map(([, n]) => n);
  const n = shape.reduce((a, b) => a * b, 1);
  const batch = shape[0];
  const per = n / batch;
  const learned = d.predict.learned_sigma;
  const ci = axes.findIndex(([name]) => name === 'c');
  if (learned && ci < 0) throw new Error('diffusionLoss: a learned sigma needs a channel axis c');
  const C = ci < 0 ? 1 : shape[ci];
  const post = ci < 0 ? 1 : shape.slice(ci + 1).reduce((a, b) => a * b, 1);
  // prediction element i of the noisy layout sits at predAt(i) of the output, its variance value C·post later
  const predAt = (i: number) => (learned ? (Math.floor(i / (C * post)) * 2 * C + (Math.floor(i / post) % C)) * post + (i % post) : i);
  const ti = axes.findIndex(([name]) => name === 't');
  const frames = ti < 0 ? 1 : shape[ti];
  const tStride = ti < 0 ? 1 : shape.slice(ti + 1).reduce((a, b) => a * b, 1);
  if (out.length !== (learned ? 2 * n : n)) throw new Error(`diffusionLoss: the output has ${out.length} elements, expected ${learned ? 2 * n : n}`);

  const grad = new Float64Array(out.length);
  const weight = new Map(d.loss.map((l) => [l.term, l.weight]));
  if (s.flow && (weight.has('vlb') || weight.has('temporal_consistency'))) throw new Error('diffusionLoss: rectified flow trains mse only');
  const sums = { mse: 0, vlb: 0, temporal_consistency: 0 };
  const pairs = (n * (frames - 1)) / frames;
  for (let b = 0; b < batch; b++) {
    const tb = t[b];
    const range = Array.from({ length: per }, (_, k) => b * per + k);
    const pick = (src: ArrayLike<number>, at: (i: number) => number) => Float64Array.from(range, (i) => src[at(i)]);
    const [x0b, nb, pred] = [pick(x0, (i) => i), pick(noise, (i) => i), pick(out, predAt)];
    const xt = addNoise(s, x0b, nb, tb);
    const [a, sg] = noisingCoefficients(s, tb);
    if (weight.has('mse')) {
      const target = trainingTarget(d.predict.target, s, x0b, nb, tb);
      range.forEach((i, k) => {
        const e = pred[k] - target[k];
        sums.mse += e * e;
        grad[predAt(i)] += (weight.get('mse')! * 2 * e) / n;
      });
    }
    if (weight.has('temporal_consistency') && frames > 1) {
      const raw = splitPrediction(d.predict.target, s, xt, pred, tb).x0;
      const x0Hat = raw.map((v) => Math.min(1, Math.max(-1, v)));
      const dx0 = d.predict.target === 'epsilon' ? -sg / a : d.predict.target === 'v' ? -sg : 1;
      range.forEach((i, k) => {
        const f = Math.floor(i / tStride) % frames;
        let g = 0;
        if (f > 0) g += Math.sign(x0Hat[k] - x0Hat[k - tStride]);
        if (f + 1 < frames) {
          const diff = x0Hat[k + tStride] - x0Hat[k];
          sums.temporal_consistency += Math.abs(diff);
          g -= Math.sign(diff);
        }
        if (Math.abs(raw[k]) <= 1) grad[predAt(i)] += (weight.get('temporal_consistency')! * g * dx0) / pairs;
      });
    }
    if (weight.has('vlb')) {
      if (!learned) throw new Error('diffusionLoss: vlb needs a learned sigma');
      const v = pick(out, (i) => predAt(i) + C * post);
      const frozen = frozenEps ? pick(frozenEps, predAt) : pred;
      const x0Frozen = splitPrediction('epsilon', s, xt, frozen, tb).x0;
      const truth = ddpmPosterior(s, xt, x0b, tb);
      const model = ddpmPosterior(s, xt, x0Frozen, tb, v);
      const { logVarianceClipped, logBeta } = posteriorCoefficients(s, tb);
      range.forEach((i, k) => {
        const lv = model.logVariance[k];
        let term: number, dLv: number;
        if (tb > 0) {
          const kl = normalKl(truth.mean[k], truth.logVariance[k], model.mean[k], lv);
          [term, dLv] = [kl.kl, kl.dLv2];
        } else {
          const ll = discretizedGaussianLogLikelihood(x0b[k], model.mean[k], 0.5 * lv);
          [term, dLv] = [-ll.logp, -0.5 * ll.dLogScale];
        }
        sums.vlb += term / Math.LN2;
        grad[predAt(i) + C * post] += (weight.get('vlb')! * dLv * 0.5 * (logBeta - logVarianceClipped)) / (n * Math.LN2);
      });
    }
  }
  const terms = new Map<LossTerm, number>();
  for (const { term } of d.loss) terms.set(term, term === 'temporal_consistency' ? (pairs > 0 ? sums[term] / pairs : 0) : sums[term] / n);
  const total = d.loss.reduce((acc, l) => acc + l.weight * terms.get(l.term)!, 0);
  return { total, terms, grad };
}
