// The reverse process on the GPU: one fused kernel per sampling step does the scheduler's whole
// arithmetic on the model's output (codegen/sampling.ts lowers the loop around it):
//   classifier-free guidance   p = u + scale (c − u), c and u the two halves of one batched output
//                              (conditional entries [0, b), unconditional [b, 2b)); a learned
//                              variance comes from the conditional half (DiT's forward_with_cfg)
//   split prediction           x̂0 and ε̂ from x_t and p: ε (x̂0 = (x − s p) / a), v (x̂0 = a x − s p,
//                              ε̂ = s x + a p) or x0 (ε̂ = (x − a p) / s), a = sqrt ᾱ_t, s = sqrt(1 − ᾱ_t);
//                              optionally x̂0 clipped to [−1, 1] and ε̂ recomputed from it (improved DDPM)
//   DDIM                       x' = sqrt ᾱ' x̂0 + sqrt(1 − ᾱ' − σ²) ε̂ + σ z
//   DDPM (ancestral)           x' = c0 x̂0 + ct x_t + σ z, σ² = β̃ (the posterior's), or with a learned
//                              sigma exp(f log β + (1 − f) log β̃), f = (v + 1) / 2 (improved DDPM)
//   Euler (rectified flow)     x' = x_t + (t'_next − t') p, p the velocity (no split, no clip, no noise)
// and writes x' over x_t in the model's noisy input (both halves under guidance), so the next
// forward reads it where it is. z is Philox (philox.ts) keyed by (seed, base + k + 1, stream), k the
// step's index, element i of the sample: word i mod 4 of block floor(i / 4), as randomKernel draws.
//
// Per-step scalars come from a table [steps, 10] (SAMPLER_TABLE_COLUMNS, float64 on the host, uploaded
// once) indexed by a step counter on the GPU: samplerPrepareKernel, first in each step, takes the
// next index, writes t into the model's timestep input and publishes the index; samplerInitKernel
// draws x_T (step key base + 0) when the index is 0. One recorded step then serves every step, and a
// whole sampling run is one command buffer with the step recorded `steps` times, or a few of them.
//   counter: array<u32, 2> = (current step index, next step index); the host writes (0, 0) to start.
//
// A known first frame (Ho et al. 2022, "Video Diffusion Models", conditional sampling by
// replacement): samplerKeepFirstKernel, after the step kernel, overwrites frame 0 of each sample
// of x' with the given frame noised to the next timestep, sqrt ᾱ' f + sqrt(1 − ᾱ') ε, ε Philox keyed
// (seed, base + k + 1, SAMPLE_FIRST_FRAME_STREAM) over the frame's elements; after the last step
// (ᾱ' = 1) that is f exactly.
import { f32Literal } from './expr.ts';
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import { PHILOX_WGSL, philoxNormal } from './philox.ts';

export type SamplerKind = 'ddpm' | 'ddim' | 'euler';
export type SamplerTarget = 'epsilon' | 'v' | 'x0';

/** Columns of the per-step table, one row per step from the noisiest (row 0) to the last. */
export const SAMPLER_TABLE_COLUMNS = [
  /** the timestep the model sees (the training schedule's index, as a number) */
  't',
  /** sqrt ᾱ_t and sqrt(1 − ᾱ_t): split the prediction */
  'sqrt_alpha_bar', 'sqrt_one_minus_alpha_bar',
  /** DDIM: sqrt ᾱ', sqrt(1 − ᾱ' − σ²); DDPM: the posterior mean's coefficients of x̂0 and x_t; Euler: t'_next − t', 0 */
  'coef_x0', 'coef_other',
  /** DDIM: σ; DDPM: the posterior's std sqrt(β̃), with a learned sigma 1; 0 where no noise is added */
  'sigma',
  /** DDPM with a learned sigma: log β and the clipped log β̃ of the (respaced) schedule; else 0 */
  'log_beta', 'log_beta_tilde',
  /** sqrt ᾱ' and sqrt(1 − ᾱ') of the timestep this step goes to (1 and 0 after the last): keep-first; Euler: 1 − t'_next, t'_next */
  'sqrt_alpha_bar_next', 'sqrt_one_minus_alpha_bar_next',
] as const;
const COLS = SAMPLER_TABLE_COLUMNS.length;

/** The Philox stream of the sampler's draws (x_T and every step's noise). */
export const SAMPLE_NOISE_STREAM = 0;
/** The Philox stream of the noise a kept first frame is noised with (samplerKeepFirstKernel). */
export const SAMPLE_FIRST_FRAME_STREAM = 1;

export interface SamplerStepParams {
  /** the sample's sizes [b, ...] in the noisy input's axis order, batch first (b samples, not 2b) */
  shape: readonly number[];
  /** index of the channel axis in `shape` (needed with a learned sigma); -1: none */
  channelAxis: number;
  kind: SamplerKind;
  predict: SamplerTarget;
  /** the output has twice the channels: noise prediction, then the variance interpolation value */
  learnedSigma: boolean;
  /** classifier-free guidance scale; null: no guidance (the model ran at batch b, not 2b) */
  guidance: number | null;
  /** clip x̂0 to [−1, 1] (and recompute ε̂ from it) */
  clip: boolean;
  /** draw noise: DDPM, or DDIM with eta > 0 (a noise-free DDIM kernel skips Philox) */
  noise: boolean;
  /** rows of the table */
  steps: number;
  workgroupSize?: number;
}

interface Layout {
  n: number;
  /** C (noise channels) and the elements after the channel axis */
  channels: number;
  post: number;
  /** elements of one half of the output (the conditional entries) */
  outHalf: number;
  blocks: number;
  wg: number;
}

function layoutOf(p: SamplerStepParams): Layout {
  const wg = p.workgroupSize ?? 64;
  if (!p.shape.length || p.shape.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`sampler: bad shape [${p.shape}]`);
  if (!Number.isInteger(p.steps) || p.steps < 1) throw new Error(`sampler: steps must be a positive integer (got ${p.steps})`);
  if (!Number.isInteger(wg) || wg < 1) throw new Error(`sampler: workgroup size must be a positive integer (got ${wg})`);
  if (p.learnedSigma && (p.channelAxis < 1 || p.channelAxis >= p.shape.length)) throw new Error('sampler: a learned sigma needs a channel axis after the batch axis');
  if (p.guidance !== null && !Number.isFinite(p.guidance)) throw new Error(`sampler: guidance scale must be finite (got ${p.guidance})`);
  const n = p.shape.reduce((a, b) => a * b, 1);
  const channels = p.channelAxis >= 0 ? p.shape[p.channelAxis] : 1;
  const post = p.channelAxis >= 0 ? p.shape.slice(p.channelAxis + 1).reduce((a, b) => a * b, 1) : 1;
  return { n, channels, post, outHalf: p.learnedSigma ? 2 * n : n, blocks: Math.ceil(n / 4), wg };
}

/** Element i of the sample's prediction in the (conditional half of the) output. */
function predictionIndex(p: SamplerStepParams, l: Layout, i: number): number {
  if (!p.learnedSigma) return i;
  const per = l.channels * l.post;
  return (Math.floor(i / per) * 2 * l.channels + (Math.floor(i / l.post) % l.channels)) * l.post + (i % l.post);
}

const RNG_STRUCT = 'struct RngParams { seed_lo: u32, seed_hi: u32, step: u32, stream: u32 }';

/**
 * One sampling step. Bindings: rng (uniform RngParams: seed, the base step of the keys, stream),
 * counter (array<u32, 2>), table (f32 [steps, 10]), out (the model's output, batch 2b under guidance),
 * x (the model's noisy input: x_t in, x' out; batch 2b under guidance, both halves written).
 */
export function samplerStepKernel(p: SamplerStepParams): KernelSpec {
  const l = layoutOf(p);
  const { n, channels: C, post, wg } = l;
  const per = C * post;
  const split: Record<SamplerTarget, string[]> = {
    epsilon: ['var x0 = (x - s * p) / a;', 'var e = p;'],
    v: ['var x0 = a * x - s * p;', 'var e = s * x + a * p;'],
    x0: ['var x0 = p;', 'var e = (x - a * p) / s;'],
  };
  if (p.kind === 'euler' && (p.noise || p.learnedSigma)) throw new Error('sampler: the Euler step draws no noise and has no learned sigma');
  const update = p.kind === 'euler' ? ['var xn = x + cx0 * p;'] : p.kind === 'ddim'
    ? ['var xn = cx0 * x0 + co * e;', ...(p.noise ? ['xn += sigma * z[j];'] : [])]
    : ['var xn = cx0 * x0 + co * x;',
      ...(!p.noise ? []
        : p.learnedSigma
          ? ['if (sigma > 0.0) {', '  let f = 0.5 * (b_out[oc + ' + per + 'u] + 1.0);', '  xn += sigma * exp(0.5 * (f * lb + (1.0 - f) * lt)) * z[j];', '}']
          : ['xn += sigma * z[j];'])];
  const body = [
    `let oc = ${p.learnedSigma ? `((i / ${per}u) * ${2 * C}u + (i / ${post}u) % ${C}u) * ${post}u + i % ${post}u` : 'i'};`,
    `var p = b_out[oc];`,
    ...(p.guidance !== null ? [`let u = b_out[oc + ${l.outHalf}u];`, `p = u + ${f32Literal(p.guidance)} * (p - u);`] : []),
    'let x = b_x[i];',
    ...(p.kind === 'euler' ? [] : split[p.predict]),
    ...(p.clip && p.kind !== 'euler' ? ['x0 = clamp(x0, -1.0, 1.0);', ...(p.kind === 'ddim' ? ['e = (x - a * x0) / s;'] : [])] : []),
    ...update,
    'b_x[i] = xn;',
    ...(p.guidance !== null ? [`b_x[i + ${n}u] = xn;`] : []),
  ];
  const wgsl = [
    RNG_STRUCT,
    '@group(0) @binding(0) var<uniform> rng: RngParams;',
    '@group(0) @binding(1) var<storage, read> b_counter: array<u32, 2>;',
    '@group(0) @binding(2) var<storage, read> b_table: array<f32>;',
    '@group(0) @binding(3) var<storage, read> b_out: array<f32>;',
    '@group(0) @binding(4) var<storage, read_write> b_x: array<f32>;',
    ...(p.noise ? [PHILOX_WGSL] : []),
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let blk = (${GRID_WORKGROUP}) * ${wg}u + lid;`,
    `  if (blk >= ${l.blocks}u) { return; }`,
    `  let k = min(b_counter[0], ${p.steps - 1}u);`,
    `  let row = k * ${COLS}u;`,
    ...(p.kind === 'euler' ? ['  let cx0 = b_table[row + 3u];'] : [
      '  let a = b_table[row + 1u];',
      '  let s = b_table[row + 2u];',
      '  let cx0 = b_table[row + 3u];',
      '  let co = b_table[row + 4u];',
    ]),
    ...(p.noise ? ['  let sigma = b_table[row + 5u];'] : []),
    ...(p.noise && p.kind === 'ddpm' && p.learnedSigma ? ['  let lb = b_table[row + 6u];', '  let lt = b_table[row + 7u];'] : []),
    // without noise rng is unread, but it stays in the layout: every step kernel binds the same buffers
    ...(p.noise ? [] : ['  _ = rng.stream;']),
    ...(p.noise ? [
      '  let w = philox4x32_10(vec4u(blk, rng.step + k + 1u, rng.stream, 0u), vec2u(rng.seed_lo, rng.seed_hi));',
      '  let z = vec4f(philox_normal2(w.x, w.y), philox_normal2(w.z, w.w));',
    ] : []),
    '  for (var j = 0u; j < 4u; j++) {',
    '    let i = 4u * blk + j;',
    `    if (i >= ${n}u) { break; }`,
    ...body.map((line) => `    ${line}`),
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    key: `sampler-step:${JSON.stringify([p.shape, p.channelAxis, p.kind, p.predict, p.learnedSigma, p.guidance, p.clip, p.noise, p.steps, wg])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [
      { name: 'rng', access: 'uniform' }, { name: 'counter', access: 'read' }, { name: 'table', access: 'read' },
      { name: 'out', access: 'read' }, { name: 'x', access: 'read_write' },
    ],
    dispatch: gridFor(Math.ceil(l.blocks / wg)),
  };
}

/**
 * First in each step: k = counter[1] (clamped to the last row), timestep[0 .. batch) = table[k].t,
 * counter = (k, k + 1). One invocation. Bindings: counter (read_write), table, timestep (f32 [batch]).
 */
export function samplerPrepareKernel(p: { batch: number; steps: number }): KernelSpec {
  if (!Number.isInteger(p.batch) || p.batch < 1 || !Number.isInteger(p.steps) || p.steps < 1) throw new Error(`sampler prepare: bad sizes ${JSON.stringify(p)}`);
  const wgsl = [
    '@group(0) @binding(0) var<storage, read_write> b_counter: array<u32, 2>;',
    '@group(0) @binding(1) var<storage, read> b_table: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> b_timestep: array<f32>;',
    '@compute @workgroup_size(1)',
    'fn main() {',
    `  let k = min(b_counter[1], ${p.steps - 1}u);`,
    `  let t = b_table[k * ${COLS}u];`,
    `  for (var j = 0u; j < ${p.batch}u; j++) { b_timestep[j] = t; }`,
    '  b_counter[0] = k;',
    '  b_counter[1] = k + 1u;',
    '}',
    '',
  ].join('\n');
  return {
    key: `sampler-prepare:${p.batch}:${p.steps}`,
    wgsl,
    entryPoint: 'main',
    bindings: [{ name: 'counter', access: 'read_write' }, { name: 'table', access: 'read' }, { name: 'timestep', access: 'read_write' }],
    dispatch: [1, 1, 1],
  };
}

/**
 * x_T: when counter[0] is 0, x[0 .. n) = N(0, 1) keyed (seed, rng.step, stream), copied to
 * x[n .. 2n) with `copies` 2 (guidance); any other step it returns at once. Bindings: rng (uniform),
 * counter (read), x (read_write).
 */
export function samplerInitKernel(p: { n: number; copies: 1 | 2; workgroupSize?: number }): KernelSpec {
  const wg = p.workgroupSize ?? 64;
  if (!Number.isInteger(p.n) || p.n < 1 || (p.copies !== 1 && p.copies !== 2)) throw new Error(`sampler init: bad sizes ${JSON.stringify(p)}`);
  const blocks = Math.ceil(p.n / 4);
  const wgsl = [
    RNG_STRUCT,
    '@group(0) @binding(0) var<uniform> rng: RngParams;',
    '@group(0) @binding(1) var<storage, read> b_counter: array<u32, 2>;',
    '@group(0) @binding(2) var<storage, read_write> b_x: array<f32>;',
    PHILOX_WGSL,
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    '  if (b_counter[0] != 0u) { return; }',
    `  let blk = (${GRID_WORKGROUP}) * ${wg}u + lid;`,
    `  if (blk >= ${blocks}u) { return; }`,
    '  let w = philox4x32_10(vec4u(blk, rng.step, rng.stream, 0u), vec2u(rng.seed_lo, rng.seed_hi));',
    '  let z = vec4f(philox_normal2(w.x, w.y), philox_normal2(w.z, w.w));',
    '  for (var j = 0u; j < 4u; j++) {',
    '    let i = 4u * blk + j;',
    `    if (i >= ${p.n}u) { break; }`,
    '    b_x[i] = z[j];',
    ...(p.copies === 2 ? [`    b_x[i + ${p.n}u] = z[j];`] : []),
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    key: `sampler-init:${p.n}:${p.copies}:${wg}`,
    wgsl,
    entryPoint: 'main',
    bindings: [{ name: 'rng', access: 'uniform' }, { name: 'counter', access: 'read' }, { name: 'x', access: 'read_write' }],
    dispatch: gridFor(Math.ceil(blocks / wg)),
  };
}

/** Reference of samplerInitKernel: x_T for (seed, step, stream), float64 (the kernel is within a few f32 ulps). */
export const samplerInitReference = (seed: number, n: number, step = 0, stream = SAMPLE_NOISE_STREAM) => philoxNormal({ seed, step, stream }, n);

/**
 * The float64 reference of samplerStepKernel at table row k: the kernel's formulas, term for term.
 * x: x_t (its first n elements are read); out: the model's output; noise: z for the step (n values;
 * unused without p.noise). Returns x' (n values).
 */
export function samplerStepReference(p: SamplerStepParams, table: ArrayLike<number>, k: number, x: ArrayLike<number>,
  out: ArrayLike<number>, noise?: ArrayLike<number>): Float64Array {
  const l = layoutOf(p);
  const r = Math.min(k, p.steps - 1) * COLS;
  const [a, s, cx0, co, sigma, lb, lt] = [1, 2, 3, 4, 5, 6, 7].map((c) => table[r + c]);
  const per = l.channels * l.post;
  const xn = new Float64Array(l.n);
  for (let i = 0; i < l.n; i++) {
    const oc = predictionIndex(p, l, i);
    let pr = out[oc];
    if (p.guidance !== null) { const u = out[oc + l.outHalf]; pr = u + p.guidance * (pr - u); }
    const xi = x[i];
    if (p.kind === 'euler') { xn[i] = xi + cx0 * pr; continue; }
    let x0: number, e: number;
    if (p.predict === 'epsilon') { x0 = (xi - s * pr) / a; e = pr; }
    else if (p.predict === 'v') { x0 = a * xi - s * pr; e = s * xi + a * pr; }
    else { x0 = pr; e = (xi - a * pr) / s; }
    if (p.clip) { x0 = Math.min(1, Math.max(-1, x0)); if (p.kind === 'ddim') e = (xi - a * x0) / s; }
    let v: number;
    if (p.kind === 'ddim') {
      v = cx0 * x0 + co * e;
      if (p.noise) v += sigma * noise![i];
    } else {
      v = cx0 * x0 + co * xi;
      if (p.noise && p.learnedSigma) {
        if (sigma > 0) { const f = 0.5 * (out[oc + per] + 1); v += sigma * Math.exp(0.5 * (f * lb + (1 - f) * lt)) * noise![i]; }
      } else if (p.noise) v += sigma * noise![i];
    }
    xn[i] = v;
  }
  return xn;
}

export interface KeepFirstParams {
  /** elements of the given frames: b samples of the image input, its layout (the noisy input's without t) */
  frames: number;
  /** the noisy input: the size of its t axis, and the product of the sizes after t */
  t: number;
  post: number;
  /** elements of the b samples in x; with copies 2 (guidance) x' is written at i and i + n too */
  n: number;
  copies: 1 | 2;
  /** rows of the table */
  steps: number;
  workgroupSize?: number;
}

function checkKeepFirst(p: KeepFirstParams): void {
  const whole = (v: number) => Number.isInteger(v) && v >= 1;
  if (![p.frames, p.t, p.post, p.n, p.steps].every(whole) || (p.copies !== 1 && p.copies !== 2) || p.frames % p.post !== 0 || p.frames * p.t !== p.n) {
    throw new Error(`sampler keep-first: bad sizes ${JSON.stringify(p)}`);
  }
}

/** Where element i of the given frames goes in x: frame 0 of the t axis (index (i / post) t post + i mod post). */
export const keepFirstIndex = (p: Pick<KeepFirstParams, 't' | 'post'>, i: number) => Math.floor(i / p.post) * p.t * p.post + (i % p.post);

/**
 * After the step kernel (the same step index counter[0] = k): frame 0 of x' becomes
 * table[k].sqrt_alpha_bar_next · f + table[k].sqrt_one_minus_alpha_bar_next · ε, f the given frames,
 * ε element i of Philox (seed, rng.step + k + 1, SAMPLE_FIRST_FRAME_STREAM), as randomKernel draws.
 * Bindings: rng (uniform RngParams), counter (read), table (read), image (f32, the image input: its
 * first `frames` elements are read), x (read_write).
 */
export function samplerKeepFirstKernel(p: KeepFirstParams): KernelSpec {
  checkKeepFirst(p);
  const wg = p.workgroupSize ?? 64;
  const blocks = Math.ceil(p.frames / 4);
  const wgsl = [
    RNG_STRUCT,
    '@group(0) @binding(0) var<uniform> rng: RngParams;',
    '@group(0) @binding(1) var<storage, read> b_counter: array<u32, 2>;',
    '@group(0) @binding(2) var<storage, read> b_table: array<f32>;',
    '@group(0) @binding(3) var<storage, read> b_image: array<f32>;',
    '@group(0) @binding(4) var<storage, read_write> b_x: array<f32>;',
    PHILOX_WGSL,
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let blk = (${GRID_WORKGROUP}) * ${wg}u + lid;`,
    `  if (blk >= ${blocks}u) { return; }`,
    `  let k = min(b_counter[0], ${p.steps - 1}u);`,
    `  let row = k * ${COLS}u;`,
    `  let a = b_table[row + ${SAMPLER_TABLE_COLUMNS.indexOf('sqrt_alpha_bar_next')}u];`,
    `  let s = b_table[row + ${SAMPLER_TABLE_COLUMNS.indexOf('sqrt_one_minus_alpha_bar_next')}u];`,
    `  let w = philox4x32_10(vec4u(blk, rng.step + k + 1u, ${SAMPLE_FIRST_FRAME_STREAM}u, 0u), vec2u(rng.seed_lo, rng.seed_hi));`,
    '  let z = vec4f(philox_normal2(w.x, w.y), philox_normal2(w.z, w.w));',
    '  for (var j = 0u; j < 4u; j++) {',
    '    let i = 4u * blk + j;',
    `    if (i >= ${p.frames}u) { break; }`,
    `    let o = (i / ${p.post}u) * ${p.t * p.post}u + i % ${p.post}u;`,
    '    let v = a * b_image[i] + s * z[j];',
    '    b_x[o] = v;',
    ...(p.copies === 2 ? [`    b_x[o + ${p.n}u] = v;`] : []),
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    key: `sampler-keep-first:${JSON.stringify([p.frames, p.t, p.post, p.n, p.copies, p.steps, wg])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [
      { name: 'rng', access: 'uniform' }, { name: 'counter', access: 'read' }, { name: 'table', access: 'read' },
      { name: 'image', access: 'read' }, { name: 'x', access: 'read_write' },
    ],
    dispatch: gridFor(Math.ceil(blocks / wg)),
  };
}

/**
 * The float64 reference of samplerKeepFirstKernel at table row k: x (the b samples, n values) with
 * frame 0 replaced by the given frames `image` noised by `noise` (`frames` values each).
 */
export function samplerKeepFirstReference(p: KeepFirstParams, table: ArrayLike<number>, k: number, image: ArrayLike<number>,
  x: ArrayLike<number>, noise: ArrayLike<number>): Float64Array {
  checkKeepFirst(p);
  const r = Math.min(k, p.steps - 1) * COLS;
  const [a, s] = [table[r + SAMPLER_TABLE_COLUMNS.indexOf('sqrt_alpha_bar_next')], table[r + SAMPLER_TABLE_COLUMNS.indexOf('sqrt_one_minus_alpha_bar_next')]];
  const out = Float64Array.from({ length: p.n }, (_, i) => x[i]);
  for (let i = 0; i < p.frames; i++) out[keepFirstIndex(p, i)] = a * image[i] + s * noise[i];
  return out;
}
