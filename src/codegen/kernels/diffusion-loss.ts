// The training loss of a diffusion model on the GPU, from the model output, the clean batch x0, the
// noise and the timesteps the step drew (definitions: docs/language.md, `loss`; float64 oracle:
// compiler/reference/diffusion-math.ts diffusionLoss):
//   mse                   mean over the prediction channels of (prediction − target)²
//   vlb                   (learned sigma) mean over the elements, in bits, of KL(q(x_{t−1} | x_t, x0) ‖ p)
//                         for t > 0 and of the discretized Gaussian decoder NLL of x0 at t = 0; p's
//                         log variance is frac log β_t + (1 − frac) log β̃_t (clipped), frac = (v + 1) / 2,
//                         its mean comes from the frozen noise prediction: vlb trains the variance only
//   temporal_consistency  mean over neighbouring frame pairs of |x̂[t+1] − x̂[t]|, x̂ = clip(x0̂, −1, 1)
// Two kernels: `diffusion-loss` writes d loss / d output (every output element) and per-workgroup
// partial sums of each term; `diffusion-loss-finish` adds the partials in a fixed order (the same bits
// every run) into one buffer per term and their weighted sum, the loss.
// Per-timestep constants come as a host-computed float64 table (see LOSS_TABLE_COLUMNS), so nothing
// here depends on an f32 cumprod. The formulas are rearranged to stay accurate in f32:
//   x0 − x0̂ = (s / a)(ε̂ − ε) and μ_q − μ_p = c0 (x0 − x0̂), not differences of x_t-sized numbers;
//   e^x − 1 − x by its series near 0 (the KL of two close variances);
//   the approximate CDF (1 + tanh u) / 2 is σ(2u), so log(Φ(z₊) − Φ(z₋)) = log σ(a) + log σ(−b) +
//   log(1 − e^(b − a)) with a = 2u(z₊), b = 2u(z₋): no cancellation in the tails; its derivative's
//   difference of densities as an integral over the bin; log(1 + y) by a series (lavapipe's log
//   loses relative accuracy near 1).
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import { f32Literal } from './expr.ts';
import { workgroupSumWgsl } from './reduce.ts';
import type { Target } from './diffusion.ts';

export type LossTerm = 'mse' | 'vlb' | 'temporal_consistency';

/**
 * Columns of the per-timestep table [steps, 6]: sqrt ᾱ_t, sqrt(1 − ᾱ_t), their ratio s / a, the
 * posterior mean's x0 coefficient times s / a (c0 s / a), the clipped posterior log variance log β̃_t
 * (vlb's lower bound) and log β_t (its upper bound).
 */
export const LOSS_TABLE_COLUMNS = ['sqrt_alpha_bar', 'sqrt_one_minus_alpha_bar', 'x0_ratio', 'mean_ratio', 'log_var_min', 'log_var_max'] as const;
const COLS = LOSS_TABLE_COLUMNS.length;

/** Half the width of the decoder's bin (x0 ± 1/255: an 8-bit level of data in [−1, 1]) and the probability floor. */
const HALF_BIN = 1 / 255;
const MIN_PROB = 1e-12;
const CDF_A = Math.sqrt(2 / Math.PI);
const CDF_B = 0.044715;
/** 5-point Gauss–Legendre: weights of the middle, inner and outer nodes, and the nodes. */
const GL_W = [128 / 225, (322 + 13 * Math.sqrt(70)) / 900, (322 - 13 * Math.sqrt(70)) / 900];
const GL_X = [0, Math.sqrt(5 - 2 * Math.sqrt(10 / 7)) / 3, Math.sqrt(5 + 2 * Math.sqrt(10 / 7)) / 3];

export interface DiffusionLossParams {
  /** the noisy input's shape, row-major, batch first; the output has it too, with twice the channels when sigma is learned */
  shape: readonly number[];
  /** the channel axis in shape (-1: none, only without a learned sigma) */
  channelAxis: number;
  /** the frame axis in shape (-1: none; temporal_consistency is then 0) */
  timeAxis: number;
  /** diffusion steps T: rows of the table */
  steps: number;
  predict: Target;
  learnedSigma: boolean;
  /** the terms in the order of the partials and the term buffers, each with its weight in the loss */
  terms: readonly { term: LossTerm; weight: number }[];
  workgroupSize?: number;
  /** workgroups of the loss kernel (its partial sums per term); default min(ceil(n / wg), 1024) */
  partials?: number;
}

function layout(p: DiffusionLossParams) {
  const wg = p.workgroupSize ?? 64;
  const rank = p.shape.length;
  const n = p.shape.reduce((a, b) => a * b, 1);
  if (!Number.isInteger(n) || n < 1 || p.shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`diffusion loss: bad shape [${p.shape}]`);
  if (!Number.isInteger(Math.log2(wg))) throw new Error(`diffusion loss: workgroup size must be a power of two (got ${wg})`);
  if (!Number.isInteger(p.steps) || p.steps < 1) throw new Error(`diffusion loss: bad steps ${p.steps}`);
  for (const [name, axis] of [['channel', p.channelAxis], ['time', p.timeAxis]] as const) {
    if (!Number.isInteger(axis) || axis < -1 || axis >= rank || axis === 0) throw new Error(`diffusion loss: bad ${name} axis ${axis} of [${p.shape}]`);
  }
  if (p.learnedSigma && p.channelAxis < 0) throw new Error('diffusion loss: a learned sigma needs a channel axis');
  if (p.learnedSigma && p.predict !== 'epsilon') throw new Error('diffusion loss: a learned sigma goes with epsilon prediction');
  if (!p.terms.length || new Set(p.terms.map((t) => t.term)).size !== p.terms.length) throw new Error('diffusion loss: terms must be distinct and at least one');
  if (p.terms.some((t) => t.term === 'vlb') && !p.learnedSigma) throw new Error('diffusion loss: vlb needs a learned sigma');
  const after = (axis: number) => p.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const C = p.channelAxis < 0 ? 1 : p.shape[p.channelAxis];
  const post = p.channelAxis < 0 ? 1 : after(p.channelAxis);
  const frames = p.timeAxis < 0 ? 1 : p.shape[p.timeAxis];
  const tStride = p.timeAxis < 0 ? 1 : after(p.timeAxis);
  const partials = p.partials ?? Math.min(Math.ceil(n / wg), 1024);
  if (!Number.isInteger(partials) || partials < 1) throw new Error(`diffusion loss: bad partials ${partials}`);
  const pairs = (n / frames) * (frames - 1);
  // each term's sum of per-element values times this is the term
  const scale: Record<LossTerm, number> = { mse: 1 / n, vlb: 1 / (n * Math.LN2), temporal_consistency: pairs > 0 ? 1 / pairs : 0 };
  return { wg, n, per: n / p.shape[0], C, post, frames, tStride, partials, pairs, scale, outElements: p.learnedSigma ? 2 * n : n };
}

/** Elements of the output (and the seed gradient) and of the partials buffer [terms, partials]. */
export function diffusionLossSizes(p: DiffusionLossParams): { output: number; partials: number } {
  const l = layout(p);
  return { output: l.outElements, partials: p.terms.length * l.partials };
}

const WGSL_HELPERS = `// e^x − 1 − x: its series where it cancels
fn expm1_minus_x(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    return x * x * (0.5 + x * (0.16666667 + x * (0.041666668 + x * (0.008333334 + x * (0.0013888889 + x * 0.0001984127)))));
  }
  return exp(x) - 1.0 - x;
}

// log(1 + y) for y in [0, 1]: 2 atanh(w), w = y / (2 + y) <= 1/3, by its series (relative error < 1e-9)
fn log1p_unit(y: f32) -> f32 {
  let w = y / (2.0 + y);
  let w2 = w * w;
  var acc = 1.0 / 17.0;
  for (var k = 15; k >= 1; k -= 2) { acc = 1.0 / f32(k) + w2 * acc; }
  return 2.0 * w * acc;
}

// log(1 + e^x)
fn softplus(x: f32) -> f32 { return max(x, 0.0) + log1p_unit(exp(-abs(x))); }

// log(1 − e^(−d)) for d > 0
fn log1m_exp_neg(d: f32) -> f32 {
  let q = exp(-d);
  if (q < 0.5) { return -log1p_unit(q / (1.0 - q)); }
  return log(d - expm1_minus_x(-d));
}

// u(z) of the approximate normal CDF σ(2u) and its derivative
fn cdf_u(z: f32) -> f32 { return ${f32Literal(CDF_A)} * (z + ${f32Literal(CDF_B)} * z * z * z); }
fn cdf_du(z: f32) -> f32 { return ${f32Literal(CDF_A)} * (1.0 + ${f32Literal(3 * CDF_B)} * z * z); }

// q = σ(2u) σ(−2u) without cancellation; z times the approximate density 2u' q, g(z), and its slope g'
fn cdf_q(z: f32) -> f32 { let m = 2.0 * abs(cdf_u(z)); return exp(-m - 2.0 * log1p_unit(exp(-m))); }
fn zpdf(z: f32) -> f32 { return 2.0 * z * cdf_du(z) * cdf_q(z); }
fn zpdf_slope(z: f32) -> f32 {
  let du = cdf_du(z);
  return 2.0 * cdf_q(z) * (du + z * (${f32Literal(6 * CDF_A * CDF_B)} * z - 2.0 * du * du * tanh(cdf_u(z))));
}

// The decoder NLL of x0's bin under N(x0 − dx, e^lv) (dx = x0 − mean), and its derivative in lv
fn decoder_nll(x0: f32, dx: f32, lv: f32) -> vec2f {
  let inv = exp(-0.5 * lv);
  let zp = inv * (dx + ${f32Literal(HALF_BIN)});
  let zm = inv * (dx - ${f32Literal(HALF_BIN)});
  let a = 2.0 * cdf_u(zp);
  let b = 2.0 * cdf_u(zm);
  // d a / d lv, d b / d lv (dz / dlv = −z / 2)
  let da = -cdf_du(zp) * zp;
  let db = -cdf_du(zm) * zm;
  var logp: f32;
  var dlogp: f32;
  if (x0 < -0.999) {
    logp = -softplus(-a);
    dlogp = exp(-softplus(a)) * da;
  } else if (x0 > 0.999) {
    logp = -softplus(b);
    dlogp = -exp(-softplus(-b)) * db;
  } else {
    logp = -softplus(-a) - softplus(b) + log1m_exp_neg(max(a - b, 1e-30));
    // d P / d lv = −(g(z₊) − g(z₋)) / 2: over a narrow bin the difference cancels, so it is the
    // integral of g' by 5-point Gauss–Legendre (exact to far below f32 rounding for a width under 1/2)
    let width = zp - zm;
    var dg: f32;
    if (width < 0.5) {
      let mid = 0.5 * (zp + zm);
      let half = 0.5 * width;
      dg = half * (${f32Literal(GL_W[0])} * zpdf_slope(mid)
        + ${f32Literal(GL_W[1])} * (zpdf_slope(mid - ${f32Literal(GL_X[1])} * half) + zpdf_slope(mid + ${f32Literal(GL_X[1])} * half))
        + ${f32Literal(GL_W[2])} * (zpdf_slope(mid - ${f32Literal(GL_X[2])} * half) + zpdf_slope(mid + ${f32Literal(GL_X[2])} * half)));
    } else {
      dg = zpdf(zp) - zpdf(zm);
    }
    dlogp = -0.5 * dg / exp(logp);
  }
  if (logp < ${f32Literal(Math.log(MIN_PROB))}) { return vec2f(${f32Literal(-Math.log(MIN_PROB))}, 0.0); }
  return vec2f(-logp, -dlogp);
}`;

/**
 * Bindings: out (the model output), x0, noise (the noisy input's layout), t (i32 [batch]), table
 * (f32 [steps, 6]); written: seed (d loss / d out, every element), partials (f32 [terms, partials]).
 * t outside [0, T) is clamped (the timestep kernel never draws one).
 */
export function diffusionLossKernel(p: DiffusionLossParams): KernelSpec {
  const l = layout(p);
  const has = (t: LossTerm) => p.terms.some((x) => x.term === t);
  const w = (t: LossTerm) => p.terms.find((x) => x.term === t)?.weight ?? 0;
  const lit = f32Literal;
  const u = (x: number) => `${x}u`;
  const predAt = p.learnedSigma
    ? `((j / ${u(l.C * l.post)}) * ${u(2 * l.C)} + (j / ${u(l.post)}) % ${u(l.C)}) * ${u(l.post)} + j % ${u(l.post)}`
    : 'j';
  // flow: rectified flow's velocity ε − x0 (x̂0 = x_t − t' v, table columns a = 1 − t', s = t')
  const x0Raw = { epsilon: 'b_x0[j] + r * (b_noise[j] - b_out[pred_at(j)])', v: 'a * (a * b_x0[j] + s * b_noise[j]) - s * b_out[pred_at(j)]', x0: 'b_out[pred_at(j)]', flow: 'a * b_x0[j] + s * b_noise[j] - s * b_out[pred_at(j)]' }[p.predict];
  const dx0 = { epsilon: '-r', v: '-s', x0: '1.0', flow: '-s' }[p.predict];
  const target = { epsilon: 'e', v: 'a * e - s * x', x0: 'x', flow: 'e - x' }[p.predict];
  const tc = has('temporal_consistency') && l.frames > 1;
  const body: string[] = [];
  if (has('mse')) {
    body.push(
      `    let dm = pr - (${target});`,
      '    v_mse += dm * dm;',
      `    gp += ${lit((w('mse') * 2) / l.n)} * dm;`,
    );
  }
  if (tc) {
    body.push(
      '    let raw = x0_raw(i, a, s, r);',
      '    let xc = clamp(raw, -1.0, 1.0);',
      `    let f = (i / ${u(l.tStride)}) % ${u(l.frames)};`,
      '    var gx = 0.0;',
      `    if (f > 0u) { gx += sign(xc - clamp(x0_raw(i - ${u(l.tStride)}, a, s, r), -1.0, 1.0)); }`,
      `    if (f + 1u < ${u(l.frames)}) {`,
      `      let dd = clamp(x0_raw(i + ${u(l.tStride)}, a, s, r), -1.0, 1.0) - xc;`,
      '      v_tc += abs(dd);',
      '      gx -= sign(dd);',
      '    }',
      `    if (abs(raw) <= 1.0) { gp += ${lit(w('temporal_consistency') * l.scale.temporal_consistency)} * gx * (${dx0}); }`,
    );
  }
  if (p.learnedSigma) {
    const vlb = has('vlb');
    body.push(`    let vi = oi + ${u(l.C * l.post)};`);
    if (vlb) {
      body.push(
        `    let lmin = b_table[row + 4u];`,
        `    let span = b_table[row + 5u] - lmin;`,
        '    let lv = lmin + 0.5 * (b_out[vi] + 1.0) * span;',
        '    let dmu = b_table[row + 3u] * (pr - e);',
        '    var term: vec2f;',
        '    if (tt > 0u) {',
        '      let xk = lmin - lv;',
        '      let m2 = dmu * dmu * exp(-lv);',
        '      term = vec2f(0.5 * (expm1_minus_x(xk) + m2), 0.5 * (-xk - expm1_minus_x(xk) - m2));',
        '    } else {',
        '      term = decoder_nll(x, dmu, lv);',
        '    }',
        '    v_vlb += term.x;',
        `    b_seed[vi] = ${lit(w('vlb') * l.scale.vlb * 0.5)} * term.y * span;`,
      );
    } else {
      body.push('    b_seed[vi] = 0.0;');
    }
  }
  const sums = p.terms.map((t, k) => {
    const v = { mse: 'v_mse', vlb: 'v_vlb', temporal_consistency: 'v_tc' }[t.term];
    return `  let sum${k} = workgroup_sum(${v}, lid);\n  if (lid == 0u) { b_partials[${u(k * l.partials)} + g] = sum${k}; }`;
  });
  const wgsl = `@group(0) @binding(0) var<storage, read> b_out: array<f32>;
@group(0) @binding(1) var<storage, read> b_x0: array<f32>;
@group(0) @binding(2) var<storage, read> b_noise: array<f32>;
@group(0) @binding(3) var<storage, read> b_t: array<i32>;
@group(0) @binding(4) var<storage, read> b_table: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_seed: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_partials: array<f32>;

${workgroupSumWgsl(l.wg)}
${p.learnedSigma && has('vlb') ? WGSL_HELPERS : ''}

// the output element of prediction element j (the noisy input's layout)
fn pred_at(j: u32) -> u32 { return ${predAt}; }
${tc ? `
// the predicted x0 of element j, before clipping
fn x0_raw(j: u32, a: f32, s: f32, r: f32) -> f32 { return ${x0Raw}; }
` : ''}
@compute @workgroup_size(${l.wg})
${GRID_MAIN}
  let g = ${GRID_WORKGROUP};
  if (g >= ${u(l.partials)}) { return; }
  var v_mse = 0.0;
  var v_vlb = 0.0;
  var v_tc = 0.0;
  for (var i: u32 = g * ${u(l.wg)} + lid; i < ${u(l.n)}; i += ${u(l.partials * l.wg)}) {
    let tt = u32(clamp(b_t[i / ${u(l.per)}], 0, ${p.steps - 1}));
    let row = ${u(COLS)} * tt;
    let a = b_table[row];
    let s = b_table[row + 1u];
    let r = b_table[row + 2u];
    let x = b_x0[i];
    let e = b_noise[i];
    let oi = pred_at(i);
    let pr = b_out[oi];
    var gp = 0.0;
${body.join('\n')}
    b_seed[oi] = gp;
  }
${sums.join('\n')}
}
`;
  return {
    key: `diffusion-loss:${JSON.stringify([p.shape, p.channelAxis, p.timeAxis, p.steps, p.predict, p.learnedSigma, p.terms, l.wg, l.partials])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [
      { name: 'out', access: 'read' }, { name: 'x0', access: 'read' }, { name: 'noise', access: 'read' }, { name: 't', access: 'read' },
      { name: 'table', access: 'read' }, { name: 'seed', access: 'read_write' }, { name: 'partials', access: 'read_write' },
    ],
    dispatch: gridFor(l.partials),
  };
}

/**
 * Bindings: partials (from diffusionLossKernel), then one 1-element buffer per term (its value,
 * unweighted) and the loss (Σ weight · term). One workgroup adds each term's partials in a fixed tree.
 */
export function diffusionLossFinishKernel(p: DiffusionLossParams): KernelSpec {
  const l = layout(p);
  const lines = p.terms.map((t, k) => `  {
    var acc = 0.0;
    for (var i: u32 = lid; i < ${l.partials}u; i += ${l.wg}u) { acc += b_partials[${k * l.partials}u + i]; }
    let v = workgroup_sum(acc, lid) * ${f32Literal(l.scale[t.term])};
    if (lid == 0u) { b_term${k}[0] = v; }
    total += ${f32Literal(t.weight)} * v;
  }`);
  const wgsl = [
    '@group(0) @binding(0) var<storage, read> b_partials: array<f32>;',
    ...p.terms.map((_, k) => `@group(0) @binding(${k + 1}) var<storage, read_write> b_term${k}: array<f32>;`),
    `@group(0) @binding(${p.terms.length + 1}) var<storage, read_write> b_loss: array<f32>;`,
    workgroupSumWgsl(l.wg),
    `@compute @workgroup_size(${l.wg})`,
    'fn main(@builtin(local_invocation_index) lid: u32) {',
    '  var total = 0.0;',
    ...lines,
    '  if (lid == 0u) { b_loss[0] = total; }',
    '}',
    '',
  ].join('\n');
  return {
    key: `diffusion-loss-finish:${JSON.stringify([p.terms, l.partials, l.scale, l.wg])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [{ name: 'partials', access: 'read' }, ...p.terms.map((t) => ({ name: t.term, access: 'read_write' as const })), { name: 'loss', access: 'read_write' }],
    dispatch: [1, 1, 1],
  };
}

// ---------------------------------------------------------------- float64 reference

const softplus64 = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const cdfU = (z: number) => CDF_A * (z + CDF_B * z ** 3);
const cdfDu = (z: number) => CDF_A * (1 + 3 * CDF_B * z * z);
const cdfQ = (z: number) => Math.exp(-softplus64(2 * cdfU(z)) - softplus64(-2 * cdfU(z)));
const zpdf = (z: number) => 2 * z * cdfDu(z) * cdfQ(z);
const zpdfSlope = (z: number) => 2 * cdfQ(z) * (cdfDu(z) + z * (6 * CDF_A * CDF_B * z - 2 * cdfDu(z) ** 2 * Math.tanh(cdfU(z))));

/** The decoder NLL and its derivative in the log variance, as the kernel computes them. */
function decoderNll64(x0: number, dx: number, lv: number): [number, number] {
  const inv = Math.exp(-0.5 * lv);
  const [zp, zm] = [inv * (dx + HALF_BIN), inv * (dx - HALF_BIN)];
  const [a, b] = [2 * cdfU(zp), 2 * cdfU(zm)];
  const [da, db] = [-cdfDu(zp) * zp, -cdfDu(zm) * zm];
  let logp: number, dlogp: number;
  if (x0 < -0.999) { logp = -softplus64(-a); dlogp = Math.exp(-softplus64(a)) * da; }
  else if (x0 > 0.999) { logp = -softplus64(b); dlogp = -Math.exp(-softplus64(-b)) * db; }
  else {
    logp = -softplus64(-a) - softplus64(b) + Math.log(-Math.expm1(b - a));
    const [mid, half] = [0.5 * (zp + zm), 0.5 * (zp - zm)];
    const dg = zp - zm < 0.5
      ? half * (GL_W[0] * zpdfSlope(mid) + GL_W[1] * (zpdfSlope(mid - GL_X[1] * half) + zpdfSlope(mid + GL_X[1] * half))
        + GL_W[2] * (zpdfSlope(mid - GL_X[2] * half) + zpdfSlope(mid + GL_X[2] * half)))
      : zpdf(zp) - zpdf(zm);
    dlogp = (-0.5 * dg) / Math.exp(logp);
  }
  return logp < Math.log(MIN_PROB) ? [-Math.log(MIN_PROB), 0] : [-logp, -dlogp];
}

/**
 * Float64 reference of both kernels: the seed gradient (output layout), each term's value in the
 * order of p.terms, and the loss.
 */
export function diffusionLossReference(p: DiffusionLossParams, out: ArrayLike<number>, x0: ArrayLike<number>, noise: ArrayLike<number>,
  t: ArrayLike<number>, table: ArrayLike<number>): { seed: Float64Array; terms: Float64Array; loss: number } {
  const l = layout(p);
  const w = (term: LossTerm) => p.terms.find((x) => x.term === term)?.weight;
  const predAt = (j: number) => (p.learnedSigma ? (Math.floor(j / (l.C * l.post)) * 2 * l.C + (Math.floor(j / l.post) % l.C)) * l.post + (j % l.post) : j);
  const seed = new Float64Array(l.outElements);
  const sums = { mse: 0, vlb: 0, temporal_consistency: 0 };
  const stepOf = (i: number) => Math.min(Math.max(t[Math.floor(i / l.per)], 0), p.steps - 1);
  const rowOf = (i: number) => COLS * stepOf(i);
  const x0Raw = (j: number) => {
    const row = rowOf(j);
    const [a, s, r] = [table[row], table[row + 1], table[row + 2]];
    const pr = out[predAt(j)];
    return p.predict === 'epsilon' ? x0[j] + r * (noise[j] - pr) : p.predict === 'v' ? a * (a * x0[j] + s * noise[j]) - s * pr
      : p.predict === 'flow' ? a * x0[j] + s * noise[j] - s * pr : pr;
  };
  const clip = (v: number) => Math.min(1, Math.max(-1, v));
  for (let i = 0; i < l.n; i++) {
    const row = rowOf(i);
    const [a, s, r] = [table[row], table[row + 1], table[row + 2]];
    const [x, e, oi] = [x0[i], noise[i], predAt(i)];
    const pr = out[oi];
    let gp = 0;
    if (w('mse') !== undefined) {
      const dm = pr - (p.predict === 'epsilon' ? e : p.predict === 'v' ? a * e - s * x : p.predict === 'flow' ? e - x : x);
      sums.mse += dm * dm;
      gp += ((w('mse')! * 2) / l.n) * dm;
    }
    if (w('temporal_consistency') !== undefined && l.frames > 1) {
      const raw = x0Raw(i);
      const xc = clip(raw);
      const f = Math.floor(i / l.tStride) % l.frames;
      let gx = 0;
      if (f > 0) gx += Math.sign(xc - clip(x0Raw(i - l.tStride)));
      if (f + 1 < l.frames) {
        const dd = clip(x0Raw(i + l.tStride)) - xc;
        sums.temporal_consistency += Math.abs(dd);
        gx -= Math.sign(dd);
      }
      if (Math.abs(raw) <= 1) gp += w('temporal_consistency')! * l.scale.temporal_consistency * gx * (p.predict === 'epsilon' ? -r : p.predict === 'v' || p.predict === 'flow' ? -s : 1);
    }
    seed[oi] = gp;
    if (p.learnedSigma) {
      const vi = oi + l.C * l.post;
      if (w('vlb') === undefined) { seed[vi] = 0; continue; }
      const [lmin, g] = [table[row + 4], table[row + 5] - table[row + 4]];
      const lv = lmin + 0.5 * (out[vi] + 1) * g;
      const dmu = table[row + 3] * (pr - e);
      let term: number, dlv: number;
      if (stepOf(i) > 0) {
        const m2 = dmu * dmu * Math.exp(-lv);
        term = 0.5 * (Math.expm1(lmin - lv) - (lmin - lv) + m2);
        dlv = 0.5 * (-Math.expm1(lmin - lv) - m2);
      } else {
        [term, dlv] = decoderNll64(x, dmu, lv);
      }
      sums.vlb += term;
      seed[vi] = w('vlb')! * l.scale.vlb * 0.5 * dlv * g;
    }
  }
  const terms = Float64Array.from(p.terms, (x) => sums[x.term] * l.scale[x.term]);
  return { seed, terms, loss: p.terms.reduce((acc, x, k) => acc + x.weight * terms[k], 0) };
}
