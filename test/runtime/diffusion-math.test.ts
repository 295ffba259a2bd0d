// The diffusion process maths against closed forms and identities derived independently.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prng, gaussian } from '../../src/compiler/reference/evaluate.ts';
import {
  addNoise, alphaBar, ddimStep, ddpmPosterior, ddpmStep, diffusionLoss, eulerStep, guide, noiseSchedule, samplerTimesteps, splitPrediction, trainingTarget,
} from '../../src/compiler/reference/diffusion-math.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
const normal = gaussian(prng(3));
const randn = (n: number) => Float64Array.from({ length: n }, normal);
const linear = noiseSchedule({ kind: 'linear', beta_start: 1e-4, beta_end: 0.02, steps: 1000 });

test('linear schedule: DDPM endpoints, and the product of (1 - β) telescoped in logs', () => {
  close(linear.betas[0], 1e-4, 1e-15, 'β_0');
  close(linear.betas[999], 0.02, 1e-15, 'β_T');
  // log ᾱ_T = Σ log(1 - β_t), with Σ over an arithmetic progression of β
  let logSum = 0;
  for (let t = 0; t < 1000; t++) logSum += Math.log1p(-(1e-4 + (0.02 - 1e-4) * t / 999));
  close(Math.log(linear.alphasCumprod[999]), logSum, 1e-12, 'log ᾱ_T');
  close(linear.alphasCumprod[999], 4.0358e-5, 1e-3, 'ᾱ_T of DDPM');
  assert.ok(linear.alphasCumprod.every((v, i) => i === 0 || v < linear.alphasCumprod[i - 1]), 'ᾱ decreases');
});

test('scaled_linear is linear in sqrt(β); cosine follows its ᾱ(t) = f(t) / f(0) until the clip', () => {
  const sl = noiseSchedule({ kind: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps: 1000 });
  close(sl.betas[0], 0.00085, 1e-15, 'β_0');
  close(sl.betas[999], 0.012, 1e-15, 'β_T');
  close(Math.sqrt(sl.betas[500]) - Math.sqrt(sl.betas[499]), (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999, 1e-12, 'steps in sqrt(β)');
  const cos = noiseSchedule({ kind: 'cosine', steps: 1000, s: 0.008 });
  const f = (t: number) => Math.cos(((t / 1000 + 0.008) / 1.008) * Math.PI / 2) ** 2;
  for (const t of [0, 10, 500, 900]) close(cos.alphasCumprod[t], f(t + 1) / f(0), 1e-10, `ᾱ_${t}`);
  assert.ok(cos.betas.every((b) => b > 0 && b <= 0.999));
  close(cos.betas[999], 0.999, 0, 'the last β is clipped');
});

test('every parameterisation: its target at (x0, eps) gives back x0 and eps', () => {
  const [x0, eps] = [randn(16), randn(16)];
  for (const predict of ['epsilon', 'v', 'x0'] as const) {
    for (const t of [0, 250, 999]) {
      const xt = addNoise(linear, x0, eps, t);
      const back = splitPrediction(predict, linear, xt, trainingTarget(predict, linear, x0, eps, t), t);
      back.x0.forEach((v, i) => close(v, x0[i], 1e-9 / Math.sqrt(alphaBar(linear, t)), `${predict} x0 at t=${t}`));
      back.eps.forEach((v, i) => close(v, eps[i], 1e-9, `${predict} eps at t=${t}`));
    }
  }
});

test('DDIM with eta 0 and the exact noise stays on the path x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) eps, and ends at x0', () => {
  const [x0, eps] = [randn(8), randn(8)];
  const ts = samplerTimesteps(linear, 50);
  assert.is(ts.length, 50);
  assert.is(ts[0], 980);
  assert.is(ts[49], 0);
  let x = addNoise(linear, x0, eps, ts[0]);
  for (let i = 0; i < ts.length; i++) {
    const tPrev = i + 1 < ts.length ? ts[i + 1] : -1;
    const { x0: x0hat, eps: epsHat } = splitPrediction('epsilon', linear, x, eps, ts[i]);
    x = ddimStep(linear, x0hat, epsHat, ts[i], tPrev, 0);
    const want = addNoise(linear, x0, eps, tPrev);
    x.forEach((v, k) => close(v, want[k], 1e-9, `step ${i}`));
  }
  assert.equal(samplerTimesteps(linear, 0).length, 1000);
});

test('DDIM with eta 1 has the DDPM posterior variance; the DDPM posterior is the product of two Gaussians', () => {
  const t = 400;
  const [abPrev, beta] = [alphaBar(linear, t - 1), linear.betas[t]];
  // q(x_{t-1} | x0) = N(sqrt(ᾱ') x0, 1 - ᾱ'); q(x_t | x_{t-1}) = N(sqrt(1 - β) x_{t-1}, β)
  const precision = 1 / (1 - abPrev) + (1 - beta) / beta;
  const [x0, xt] = [Float64Array.of(0.7), Float64Array.of(-0.3)];
  const mean = (Math.sqrt(abPrev) * x0[0] / (1 - abPrev) + Math.sqrt(1 - beta) * xt[0] / beta) / precision;
  const post = ddpmPosterior(linear, xt, x0, t);
  close(post.mean[0], mean, 1e-12, 'posterior mean');
  close(Math.exp(post.logVariance[0]), 1 / precision, 1e-12, 'posterior variance');
  // DDIM's σ at eta = 1 is that same variance: the noise term's coefficient, measured with unit noise
  const a = ddimStep(linear, [0], [0], t, t - 1, 1, [1])[0];
  close(a * a, 1 / precision, 1e-12, 'σ² at eta = 1');
  // learned variance: v = 1 gives β, v = -1 gives β̃
  close(Math.exp(ddpmPosterior(linear, xt, x0, t, [1]).logVariance[0]), beta, 1e-12, 'v = 1');
  close(Math.exp(ddpmPosterior(linear, xt, x0, t, [-1]).logVariance[0]), 1 / precision, 1e-12, 'v = -1');
  assert.equal(Array.from(ddpmStep(linear, xt, x0, 0, [5])), Array.from(ddpmPosterior(linear, xt, x0, 0).mean), 'no noise at t = 0');
});

test('guidance: scale 1 is the conditional output, 0 the unconditional, and it extrapolates beyond', () => {
  const [c, u] = [Float64Array.of(1, 2), Float64Array.of(0, 4)];
  assert.equal(Array.from(guide(c, u, 1)), [1, 2]);
  assert.equal(Array.from(guide(c, u, 0)), [0, 4]);
  assert.equal(Array.from(guide(c, u, 4)), [4, -4]);
});

test('rectified flow: levels k / T shifted as SD3 shifts them; x_t = (1 − t) x0 + t eps; v = eps − x0 splits back', () => {
  const rf = noiseSchedule({ kind: 'rectified_flow', steps: 1000, shift: 1 });
  close(rf.flow![0], 0.001, 1e-15, 't of the first level');
  close(rf.flow![999], 1, 0, 't of the last level: pure noise');
  const shifted = noiseSchedule({ kind: 'rectified_flow', steps: 1000, shift: 3 });
  // SD3: t' = shift t / (1 + (shift − 1) t); t = 0.5 with shift 3 gives 0.75
  close(shifted.flow![499], 0.75, 1e-15, 't\' of t = 0.5, shift 3');
  assert.ok(shifted.flow!.every((v, i) => v >= rf.flow![i] && (i === 0 || v > shifted.flow![i - 1])), 'a shift > 1 moves every level towards noise, still increasing');
  const [x0, eps] = [randn(16), randn(16)];
  for (const t of [0, 499, 999]) {
    const xt = addNoise(shifted, x0, eps, t);
    const tt = shifted.flow![t];
    xt.forEach((v, i) => close(v, (1 - tt) * x0[i] + tt * eps[i], 1e-15, `x_t at ${t}`));
    const v = trainingTarget('v', shifted, x0, eps, t);
    v.forEach((x, i) => close(x, eps[i] - x0[i], 1e-15, 'velocity'));
    const back = splitPrediction('v', shifted, xt, v, t);
    back.x0.forEach((x, i) => close(x, x0[i], 1e-12, `x0 at ${t}`));
    back.eps.forEach((x, i) => close(x, eps[i], 1e-12, `eps at ${t}`));
  }
  assert.throws(() => trainingTarget('epsilon', rf, x0, eps, 3), /predicts v/);
});

test('rectified flow: Euler with the exact velocity stays on the straight path from t = 1 and ends at x0; it is DDIM eta 0 in the flow form', () => {
  const rf = noiseSchedule({ kind: 'rectified_flow', steps: 1000, shift: 3 });
  const ts = samplerTimesteps(rf, 30);
  assert.is(ts.length, 30);
  assert.is(ts[0], 999);
  assert.is(ts[29], Math.round(1000 / 30) - 1);
  assert.ok(ts.every((t, i) => i === 0 || t < ts[i - 1]), 'decreasing');
  const [x0, eps] = [randn(8), randn(8)];
  let x: Float64Array = Float64Array.from(eps);
  for (let i = 0; i < ts.length; i++) {
    const tPrev = i + 1 < ts.length ? ts[i + 1] : -1;
    const v = Float64Array.from(x0, (a, k) => eps[k] - a);
    const next = eulerStep(rf, x, v, ts[i], tPrev);
    // DDIM's deterministic update written with x̂0 = x − t v, ε̂ = x + (1 − t) v
    const { x0: x0hat, eps: epsHat } = splitPrediction('v', rf, x, v, ts[i]);
    const sPrev = tPrev < 0 ? 0 : rf.flow![tPrev];
    next.forEach((y, k) => close(y, (1 - sPrev) * x0hat[k] + sPrev * epsHat[k], 1e-12, `DDIM form at step ${i}`));
    x = next;
    const want = tPrev < 0 ? x0 : addNoise(rf, x0, eps, tPrev);
    x.forEach((y, k) => close(y, want[k], 1e-12, `path at step ${i}`));
  }
  assert.throws(() => eulerStep(linear, x, x, 3, 2), /rectified_flow/);
});

test('rectified flow loss: mse of the velocity, its gradient 2 (out − (eps − x0)) / n', () => {
  const rf = noiseSchedule({ kind: 'rectified_flow', steps: 10, shift: 2 });
  const axes = [['b', 2], ['c', 3]] as const;
  const [x0, eps, out] = [randn(6), randn(6), randn(6)];
  const r = diffusionLoss({ predict: { target: 'v', learned_sigma: false }, loss: [{ term: 'mse', weight: 1 }] }, rf, axes, out, x0, eps, [0, 9]);
  let sum = 0;
  out.forEach((o, i) => { const e = o - (eps[i] - x0[i]); sum += e * e; close(r.grad[i], (2 * e) / 6, 1e-15, 'grad'); });
  close(r.total, sum / 6, 1e-15, 'mse');
});

test.run();
