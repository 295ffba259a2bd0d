// Counter-based random numbers for training on the GPU: Philox4x32-10 (Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3", SC 2011; the constants of Random123). A draw is a pure
// function of (key, counter), so each invocation computes its own draws with no state to carry
// between steps, and the CPU reproduces any element exactly.
//
// Keying. A draw is named by (seed, step, stream, element):
//   key     = (seed mod 2^32, floor(seed / 2^32))                  a 64-bit seed
//   counter = (floor(element / 4), step, stream, 0)
// and element i is word i mod 4 of philox4x32_10(counter, key). `stream` tells apart the tensors
// drawn in one step (noise, timesteps, dropout, ...): give each its own id, or they share words.
//
// The kernels read (seed, step, stream) at run time from a 16-byte uniform buffer, so one compiled
// kernel serves every step and every stream of its size:
//   struct RngParams { seed_lo: u32, seed_hi: u32, step: u32, stream: u32 }    (rngParams() writes it)
//
// From a word x to a number (the CPU references below are these formulas):
//   uniform in [0, 1):   (x >> 8) · 2^-24            exact in f32, so bit-identical everywhere
//   uniform in (0, 1]:   ((x >> 8) + 1) · 2^-24
//   integer in [0, T):   floor(x · T / 2^32)         the high word of x · T (bias below T / 2^32)
//   normal (Box-Muller): words (2j, 2j + 1) of a block give u1, u2 uniform in (0, 1] and
//       element 2j   = sqrt(-2 ln u1) · cos(2π (u2 - 1/2))
//       element 2j+1 = sqrt(-2 ln u1) · sin(2π (u2 - 1/2))
// The GPU evaluates ln, cos and sin with its own polynomials instead of WGSL's builtins: on lavapipe
// log(x) near x = 1 has a large relative error, and the angle is reduced exactly in turns, so a
// normal stays within a few f32 ulps of the float64 value on any adapter.
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import { f32Literal } from './expr.ts';

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;
export const PHILOX_ROUNDS = 10;

const TWO_POW_M24 = 2 ** -24;

// ---------------------------------------------------------------- CPU: exact u32 arithmetic

/**
 * High word of the 64-bit product of two u32. A double holds only 53 bits, so a · b is split into
 * 16-bit halves whose partial products (< 2^32) and their sums stay exact.
 */
export function mulhi32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox4x32 with `rounds` rounds (10 is the standard, Random123's philox4x32-10). */
export function philox4x32(ctr: ArrayLike<number>, key: ArrayLike<number>, rounds = PHILOX_ROUNDS): Uint32Array {
  let c0 = ctr[0] >>> 0, c1 = ctr[1] >>> 0, c2 = ctr[2] >>> 0, c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < rounds; r++) {
    const hi0 = mulhi32(PHILOX_M0, c0), lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2), lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + PHILOX_W0) >>> 0; // the key schedule: a Weyl sequence
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

/** Names one step's draws of one tensor. seed: an integer in [0, 2^53); step, stream: u32. */
export interface RngKey {
  seed: number;
  step: number;
  stream: number;
}

function checkKey(k: RngKey): void {
  if (!Number.isSafeInteger(k.seed) || k.seed < 0) throw new Error(`rng: seed must be an integer in [0, 2^53) (got ${k.seed})`);
  for (const [name, v] of [['step', k.step], ['stream', k.stream]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`rng: ${name} must be a u32 (got ${v})`);
  }
}

/** The kernels' uniform buffer: RngParams { seed_lo, seed_hi, step, stream }. */
export function rngParams(k: RngKey): Uint32Array {
  checkKey(k);
  return Uint32Array.of(k.seed >>> 0, Math.floor(k.seed / 2 ** 32) >>> 0, k.step, k.stream);
}

/** Words 0 .. n-1 of (seed, step, stream): element i is word i mod 4 of block floor(i / 4). */
export function philoxBits(k: RngKey, n: number): Uint32Array {
  const [seedLo, seedHi, step, stream] = rngParams(k);
  const out = new Uint32Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const w = philox4x32([b, step, stream, 0], [seedLo, seedHi]);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = w[j];
  }
  return out;
}

/** Uniform in [0, 1): (x >> 8) · 2^-24. */
export const uniformOf = (x: number) => (x >>> 8) * TWO_POW_M24;
/** Uniform in (0, 1]: ((x >> 8) + 1) · 2^-24 (never 0, so its logarithm is finite). */
export const uniformOpen0Of = (x: number) => ((x >>> 8) + 1) * TWO_POW_M24;

/** cos and sin of 2π t for |t| <= 1/2, reduced exactly to an eighth of a turn (exact zeros at quarter turns). */
function cosSinTurns(t: number): [number, number] {
  const q = Math.round(4 * t);
  const x = 2 * Math.PI * (t - q / 4);
  const [c, s] = [Math.cos(x), Math.sin(x)];
  switch (q & 3) {
    case 0: return [c, s];
    case 1: return [-s, c];
    case 2: return [-c, -s];
    default: return [s, -c];
  }
}

/** Float64 reference of the normal kernel: Box-Muller on each pair of words (see the header). */
export function philoxNormal(k: RngKey, n: number): Float64Array {
  const bits = philoxBits(k, n + (n & 1)); // a pair's cosine and sine come from the same two words
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniformOpen0Of(bits[i])));
    const [c, s] = cosSinTurns(uniformOpen0Of(bits[i + 1]) - 0.5);
    out[i] = r * c;
    if (i + 1 < n) out[i + 1] = r * s;
  }
  return out;
}

/** Reference of the uniform kernel: exact (every value is an f32). */
export const philoxUniform = (k: RngKey, n: number) => Float32Array.from(philoxBits(k, n), uniformOf);

/** Reference of the timestep kernel: integers uniform in [0, steps). */
export function philoxTimesteps(k: RngKey, n: number, steps: number): Int32Array {
  checkSteps(steps);
  return Int32Array.from(philoxBits(k, n), (x) => mulhi32(x, steps));
}

/**
 * Float64 reference of the logit-normal timestep kernel: k = floor(steps · sigmoid(mean + std · z))
 * from the normal kernel's z. The kernel computes in f32, so where the product lands within
 * rounding of a whole number the two can differ by one level.
 */
export function philoxLogitNormalTimesteps(k: RngKey, n: number, steps: number, ln: { mean: number; std: number }): Int32Array {
  checkSteps(steps);
  return Int32Array.from(philoxNormal(k, n), (z) => Math.min(steps - 1, Math.floor(steps / (1 + Math.exp(-(ln.mean + ln.std * z))))));
}

function checkSteps(steps: number | undefined): asserts steps is number {
  if (!Number.isInteger(steps) || steps! < 1 || steps! > 0x7fffffff) throw new Error(`rng: timesteps need steps (T), an integer in [1, 2^31) (got ${steps})`);
}

// ---------------------------------------------------------------- WGSL

/**
 * WGSL functions: philox4x32_10(ctr, key), philox_mulhilo(a, b) -> (hi, lo), the word-to-number
 * mappings philox_uniform / philox_uniform_open0, and philox_normal2(x1, x2) -> (z0, z1).
 * WGSL has no 64-bit integers: the high word comes from 16-bit halves, as on the CPU.
 */
export const PHILOX_WGSL = `fn philox_mulhilo(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2u(p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}

fn philox4x32_10(ctr: vec4u, key: vec2u) -> vec4u {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < ${PHILOX_ROUNDS}u; r++) {
    let p0 = philox_mulhilo(${PHILOX_M0}u, c.x);
    let p1 = philox_mulhilo(${PHILOX_M1}u, c.z);
    c = vec4u(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k += vec2u(${PHILOX_W0}u, ${PHILOX_W1}u);
  }
  return c;
}

// [0, 1) and (0, 1]: 24 bits, exact in f32
fn philox_uniform(x: u32) -> f32 { return f32(x >> 8u) * 5.9604645e-8; }
fn philox_uniform_open0(x: u32) -> f32 { return f32((x >> 8u) + 1u) * 5.9604645e-8; }

// ln x for a normal positive x: x = 2^e m with m in [sqrt(1/2), sqrt(2)], ln m = 2 atanh(s) with
// s = (m - 1) / (m + 1) (|s| < 0.172: five odd terms), ln 2 split so that e ln2_hi is exact.
fn philox_ln(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  var e = f32(i32(bits >> 23u) - 127);
  var m = bitcast<f32>((bits & 0x7fffffu) | 0x3f800000u);
  if (m > 1.4142135) { m = m * 0.5; e = e + 1.0; }
  let s = (m - 1.0) / (m + 1.0);
  let z = s * s;
  let p = 2.0 * s * (1.0 + z * (1.0 / 3.0 + z * (0.2 + z * (1.0 / 7.0 + z * (1.0 / 9.0)))));
  return e * 0.693359375 + (e * -2.1219444e-4 + p);
}

// (cos 2πt, sin 2πt) for |t| <= 1/2: exact reduction to |f| <= 1/8 turn, then Cephes' sinf/cosf polynomials.
fn philox_cos_sin_turns(t: f32) -> vec2f {
  let q = round(4.0 * t);
  let x = 6.2831855 * (t - 0.25 * q);
  let z = x * x;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * x + x;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  switch (i32(q) & 3) {
    case 0: { return vec2f(c, s); }
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}

// Box-Muller: two words, two independent standard normals
fn philox_normal2(x1: u32, x2: u32) -> vec2f {
  let r = sqrt(-2.0 * philox_ln(philox_uniform_open0(x1)));
  return r * philox_cos_sin_turns(philox_uniform_open0(x2) - 0.5);
}`;

export type RandomKind = 'normal' | 'uniform' | 'timesteps' | 'bits';

export interface RandomParams {
  /** normal: f32 N(0, 1); uniform: f32 in [0, 1); timesteps: i32 in [0, steps); bits: the raw u32 words */
  kind: RandomKind;
  /** elements to write */
  n: number;
  /** T, for kind 'timesteps' */
  steps?: number;
  /** kind 'timesteps' only: draw k = floor(T · sigmoid(mean + std · z)), z ~ N(0, 1), instead of uniformly */
  logitNormal?: { mean: number; std: number };
  workgroupSize?: number;
}

const OUT_TYPE: Record<RandomKind, string> = { normal: 'f32', uniform: 'f32', timesteps: 'i32', bits: 'u32' };

/**
 * Fills out[0 .. n) with draws of (seed, step, stream) from the RngParams uniform. Bindings:
 * 0 params (uniform, rngParams()), 1 out (array<f32>, or array<i32> / array<u32> for timesteps / bits).
 * One invocation per block of four elements: one Philox call gives all four.
 */
export function randomKernel(p: RandomParams): KernelSpec {
  const wg = p.workgroupSize ?? 64;
  if (!(p.kind in OUT_TYPE)) throw new Error(`rng: unknown kind '${p.kind}'`);
  if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`rng: n must be a positive integer (got ${p.n})`);
  if (!Number.isInteger(wg) || wg < 1) throw new Error(`rng: workgroup size must be a positive integer (got ${wg})`);
  if (p.kind === 'timesteps') checkSteps(p.steps);
  const ln = p.logitNormal;
  if (ln && (p.kind !== 'timesteps' || !Number.isFinite(ln.mean) || !(ln.std > 0 && Number.isFinite(ln.std)))) {
    throw new Error(`rng: logitNormal applies to timesteps, with a finite mean and a finite std above 0 (got ${JSON.stringify(ln)})`);
  }
  const blocks = Math.ceil(p.n / 4);
  const values: Record<RandomKind, string> = {
    bits: 'w',
    uniform: 'vec4f(philox_uniform(w.x), philox_uniform(w.y), philox_uniform(w.z), philox_uniform(w.w))',
    normal: 'vec4f(philox_normal2(w.x, w.y), philox_normal2(w.z, w.w))',
    timesteps: ln
      // sigmoid(mean + std z) in (0, 1): its level, the last one where rounding reaches 1
      ? `min(vec4i(floor(${f32Literal(p.steps!)} / (1.0 + exp(-(${f32Literal(ln.mean)} + ${f32Literal(ln.std)} * vec4f(philox_normal2(w.x, w.y), philox_normal2(w.z, w.w))))))), vec4i(${p.steps! - 1}i))`
      : `vec4i(${[...'xyzw'].map((c) => `i32(philox_mulhilo(w.${c}, ${p.steps}u).x)`).join(', ')})`,
  };
  const wgsl = [
    'struct RngParams { seed_lo: u32, seed_hi: u32, step: u32, stream: u32 }',
    '@group(0) @binding(0) var<uniform> rng: RngParams;',
    `@group(0) @binding(1) var<storage, read_write> b_out: array<${OUT_TYPE[p.kind]}>;`,
    PHILOX_WGSL,
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let b = (${GRID_WORKGROUP}) * ${wg}u + lid;`,
    `  if (b >= ${blocks}u) { return; }`,
    '  let w = philox4x32_10(vec4u(b, rng.step, rng.stream, 0u), vec2u(rng.seed_lo, rng.seed_hi));',
    `  let v = ${values[p.kind]};`,
    '  let i = 4u * b;',
    // Only the last block can be partial.
    ...[0, 1, 2, 3].map((j) => (4 * blocks - 4 + j < p.n
      ? `  b_out[i + ${j}u] = v[${j}];`
      : `  if (i + ${j}u < ${p.n}u) { b_out[i + ${j}u] = v[${j}]; }`)),
    '}',
    '',
  ].join('\n');
  return {
    key: `philox:${JSON.stringify([p.kind, p.n, p.kind === 'timesteps' ? p.steps : 0, wg, ...(ln ? [ln.mean, ln.std] : [])])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [{ name: 'params', access: 'uniform' }, { name: 'out', access: 'read_write' }],
    dispatch: gridFor(Math.ceil(blocks / wg)),
  };
}

/** The reference of randomKernel(p) for one key: exact for bits / uniform / timesteps, float64 for normal. */
export function randomReference(p: RandomParams, k: RngKey): Float64Array | Float32Array | Int32Array | Uint32Array {
  switch (p.kind) {
    case 'bits': return philoxBits(k, p.n);
    case 'uniform': return philoxUniform(k, p.n);
    case 'timesteps': return p.logitNormal ? philoxLogitNormalTimesteps(k, p.n, p.steps!, p.logitNormal) : philoxTimesteps(k, p.n, p.steps!);
    case 'normal': return philoxNormal(k, p.n);
    default: throw new Error(`rng: unknown kind '${p.kind as string}'`);
  }
}
