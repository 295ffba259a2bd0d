// Sinusoidal embeddings (diffusion timesteps; fixed 1D/2D/3D sin-cos position tables) and the
// embedding-table gather. Sinusoids keep f32 accuracy for large arguments (timestep 999 times
// frequency 1 is ~160 turns, where a plain f32 argument is off by ~1e-4 rad): frequencies are built
// in 64-bit fixed point, the phase is reduced modulo one turn in integers, and sin/cos are short
// Taylor series on [-pi/4, pi/4] (no reliance on the driver's sin/cos accuracy).
import { f32Literal } from './expr.ts';
import { flatKernel, type KernelSpec } from './kernel.ts';
import { extent, numel, wgslCoords, type View } from './view.ts';

/**
 * A fraction v in (0, 1] as 64-bit fixed point `vec2u(high word, low word)`, exact for a float64 v
 * (1 becomes 1 - 2^-64).
 */
export function fixed64(v: number): string {
  if (!(v > 0 && v <= 1)) throw new Error(`fixed64: ${v} is not in (0, 1]`);
  if (v === 1) return 'vec2u(4294967295u, 4294967295u)';
  const scaled = v * 2 ** 32; // exact: power-of-two scaling
  const hi = Math.floor(scaled);
  return `vec2u(${hi}u, ${Math.floor((scaled - hi) * 2 ** 32)}u)`;
}

// The phase is computed in integer fixed point: GPU compilers may reassociate float additions,
// which defeats error-free float tricks, but integer arithmetic modulo 2^32 is exact by definition.
export const SINUSOID_WGSL = `// 32 x 32 -> 64-bit product as vec2u(high, low)
fn mul_wide(x: u32, y: u32) -> vec2u {
  let xl = x & 0xffffu; let xh = x >> 16u; let yl = y & 0xffffu; let yh = y >> 16u;
  let ll = xl * yl; let lh = xl * yh; let hl = xh * yl;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return vec2u(xh * yh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u), (ll & 0xffffu) | (mid << 16u));
}
// product of two 64-bit fractions, truncated (error < 3 * 2^-64)
fn fx_mul(a: vec2u, b: vec2u) -> vec2u {
  let p = mul_wide(a.x, b.x);
  let lo1 = p.y + mul_wide(a.x, b.y).x;
  let lo2 = lo1 + mul_wide(a.y, b.x).x;
  return vec2u(p.x + select(0u, 1u, lo1 < p.y) + select(0u, 1u, lo2 < lo1), lo2);
}
// b^k by binary powering (b^0 = 1 - 2^-64)
fn fx_pow(b: vec2u, k: u32) -> vec2u {
  var r = vec2u(0xffffffffu, 0xffffffffu);
  var p = b;
  var e = k;
  while (e != 0u) {
    if ((e & 1u) == 1u) { r = fx_mul(r, p); }
    e = e >> 1u;
    if (e != 0u) { p = fx_mul(p, p); }
  }
  return r;
}
// (sin, cos) of 2 pi (w / 2^32 + extra) with 0 <= extra < 0.25; Taylor series on |x| <= pi/4
fn sincos_turns(w: u32, extra: f32) -> vec2f {
  let u = f32(w & 0x3fffffffu) * 2.3283064e-10 + extra;
  let q = round(4.0 * u);
  let x = 6.2831853 * (u - 0.25 * q);
  let x2 = x * x;
  let s = x * (1.0 + x2 * (-0.16666667 + x2 * (0.0083333333 + x2 * (-0.00019841270 + x2 * 2.7557319e-6))));
  let c = 1.0 + x2 * (-0.5 + x2 * (0.041666667 + x2 * (-0.0013888889 + x2 * (2.4801587e-5 - x2 * 2.7557319e-7))));
  switch (((w >> 30u) + u32(q)) & 3u) {
    case 0u: { return vec2f(s, c); }
    case 1u: { return vec2f(c, -s); }
    case 2u: { return vec2f(-s, -c); }
    default: { return vec2f(-c, s); }
  }
}
// (sin, cos) of pos * b^k radians (|pos| < 2^32): the whole part of |pos| times the frequency in
// turns is reduced modulo 1 exactly in integers; the fractional part adds less than 1/6 turn.
fn sinusoid(pos: f32, b: vec2u, k: u32) -> vec2f {
  let f = fx_mul(fx_pow(b, k), ${fixed64(1 / (2 * Math.PI))});
  let a = abs(pos);
  let whole = floor(a);
  let n = u32(whole);
  let w = n * f.x + mul_wide(n, f.y).x;
  let sc = sincos_turns(w, (a - whole) * (f32(f.x) * 2.3283064e-10));
  return vec2f(select(sc.x, -sc.x, pos < 0.0), sc.y);
}`;

function checkOut(what: string, out: View, rows: number, dim: number) {
  if (out.shape.length !== 2 || out.shape[0] !== rows || out.shape[1] !== dim) {
    throw new Error(`${what}: out has shape [${out.shape}], expected [${rows}, ${dim}]`);
  }
}

// ---------------------------------------------------------------- timestep embedding

export interface TimestepEmbeddingParams {
  /** timesteps (any real values), shape [n] */
  t: View;
  dim: number;
  /** shape [n, dim] */
  out: View;
  /** default 10000 */
  maxPeriod?: number;
  /** 'cos_sin' (DiT / ADM: cat([cos, sin])) by default; 'sin_cos' puts sin first */
  order?: 'cos_sin' | 'sin_cos';
  workgroupSize?: number;
}

/**
 * out[i] = cat(cos(t_i f), sin(t_i f)) with f_k = maxPeriod^(-k / half), half = floor(dim / 2),
 * k = 0 .. half - 1; an odd dim ends with one zero channel (as DiT's timestep_embedding).
 */
export function timestepEmbeddingKernel(p: TimestepEmbeddingParams): KernelSpec {
  const { half, period, order } = checkTimestep(p);
  const n = p.t.shape[0];
  const wg = p.workgroupSize ?? 64;
  const cosFirst = order === 'cos_sin';
  const body = [
    `let c = flat % ${p.dim}u;`,
    `let i = flat / ${p.dim}u;`,
    'var v = 0.0;',
    `if (c < ${2 * half}u) {`,
    `  let sc = sinusoid(b_t[${p.t.offset}u + i * ${p.t.strides[0]}u], ${fixed64(period ** (-1 / half))}, c % ${half}u);`,
    `  v = select(sc.${cosFirst ? 'x' : 'y'}, sc.${cosFirst ? 'y' : 'x'}, c < ${half}u);`,
    '}',
    `b_out[${p.out.offset}u + i * ${p.out.strides[0]}u + c * ${p.out.strides[1]}u] = v;`,
  ];
  return flatKernel({
    key: `timestep-embedding:${JSON.stringify([p.t, p.dim, p.out, period, order, wg])}`,
    decls: ['@group(0) @binding(0) var<storage, read> b_t: array<f32>;', '@group(0) @binding(1) var<storage, read_write> b_out: array<f32>;', SINUSOID_WGSL],
    wg, total: n * p.dim, body, bindings: [{ name: 't', access: 'read' }, { name: 'out', access: 'read_write' }],
  });
}

function checkTimestep(p: TimestepEmbeddingParams) {
  if (p.t.shape.length !== 1) throw new Error(`timestep embedding: t must have shape [n] (got [${p.t.shape}])`);
  if (!Number.isInteger(p.dim) || p.dim < 2) throw new Error(`timestep embedding: dim must be an integer >= 2 (got ${p.dim})`);
  checkOut('timestep embedding', p.out, p.t.shape[0], p.dim);
  const period = p.maxPeriod ?? 10000;
  if (!(period > 1) || !Number.isFinite(period)) throw new Error(`timestep embedding: maxPeriod must be > 1 (got ${period})`);
  const order = p.order ?? 'cos_sin';
  if (order !== 'cos_sin' && order !== 'sin_cos') throw new Error(`timestep embedding: unknown order '${order}'`);
  return { half: Math.floor(p.dim / 2), period, order };
}

export function timestepEmbeddingReference(p: TimestepEmbeddingParams, t: ArrayLike<number>): Float64Array {
  const { half, period, order } = checkTimestep(p);
  const out = new Float64Array(extent(p.out)).fill(NaN);
  for (let i = 0; i < p.t.shape[0]; i++) {
    const ti = t[p.t.offset + i * p.t.strides[0]];
    for (let c = 0; c < p.dim; c++) {
      let v = 0;
      if (c < 2 * half) {
        const arg = ti * Math.exp((-Math.log(period) * (c % half)) / half);
        v = (c < half) === (order === 'cos_sin') ? Math.cos(arg) : Math.sin(arg);
      }
      out[p.out.offset + i * p.out.strides[0] + c * p.out.strides[1]] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------- sin-cos position tables

/**
 * `channels` consecutive channels encode the coordinate along grid axis `axis`, times `scale`
 * (default 1: interpolated positions, PixArt / Latte), as sin then cos halves.
 */
export interface SincosBlock { axis: number; channels: number; scale?: number }

export interface PositionTableParams {
  /** grid sizes, outermost first; table row m is the row-major index of a grid point */
  grid: readonly number[];
  /** channel blocks in order; their channels sum to the embedding dim */
  blocks: readonly SincosBlock[];
  /** shape [numel(grid), dim] */
  out: View;
  /** frequency base, default 10000: block frequencies are base^(-k / (channels / 2)) */
  base?: number;
  workgroupSize?: number;
}

/** MAE's get_1d_sincos_pos_embed: [sin | cos] of the position. */
export const sincos1d = (dim: number, length: number) => ({ grid: [length], blocks: [{ axis: 0, channels: dim }] });

/**
 * MAE / DiT get_2d_sincos_pos_embed on an H x W grid: the first half of the channels encodes the
 * w (column) coordinate and the second half the h (row) coordinate, each as [sin | cos].
 */
export const sincos2d = (dim: number, h: number, w: number) =>
  ({ grid: [h, w], blocks: [{ axis: 1, channels: dim / 2 }, { axis: 0, channels: dim / 2 }] });

/**
 * 3D on a T x H x W grid (rows ordered t, h, w): the first quarter of the channels encodes t,
 * the remaining three quarters are the 2D spatial table (w half, then h half). dim % 16 == 0.
 */
export const sincos3d = (dim: number, t: number, h: number, w: number) => ({
  grid: [t, h, w],
  blocks: [{ axis: 0, channels: dim / 4 }, { axis: 2, channels: (3 * dim) / 8 }, { axis: 1, channels: (3 * dim) / 8 }],
});

function checkTable(p: PositionTableParams) {
  const base = p.base ?? 10000;
  if (!(base > 1) || !Number.isFinite(base)) throw new Error(`position table: base must be > 1 (got ${base})`);
  if (p.grid.length === 0 || p.grid.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`position table: bad grid [${p.grid}]`);
  for (const b of p.blocks) {
    if (!Number.isInteger(b.axis) || b.axis < 0 || b.axis >= p.grid.length) throw new Error(`position table: block axis ${b.axis} is not a grid axis`);
    if (b.scale !== undefined && !(Number.isFinite(b.scale) && b.scale > 0)) throw new Error(`position table: block scale must be finite and > 0 (got ${b.scale})`);
    if (!Number.isInteger(b.channels) || b.channels < 2 || b.channels % 2 !== 0) {
      throw new Error(`position table: block channels must be even and >= 2 (got ${b.channels}); for 2D use dim % 4 == 0, for 3D dim % 16 == 0`);
    }
  }
  const dim = p.blocks.reduce((s, b) => s + b.channels, 0);
  checkOut('position table', p.out, numel(p.grid), dim);
  return { base, dim };
}

export function positionTableKernel(p: PositionTableParams): KernelSpec {
  const { base, dim } = checkTable(p);
  const wg = p.workgroupSize ?? 64;
  const body = [`let c = flat % ${dim}u;`, `let m = flat / ${dim}u;`, ...wgslCoords(p.grid, 'm', 'g'),
    'var pos = 0.0;', 'var j = 0u;', 'var nfreq = 1u;', 'var fbase = vec2u(0u, 0u);'];
  let start = 0;
  p.blocks.forEach((b, i) => {
    const half = b.channels / 2;
    const pos = b.scale === undefined || b.scale === 1 ? `f32(g${b.axis})` : `f32(g${b.axis}) * ${f32Literal(b.scale)}`;
    body.push(`${i === 0 ? '' : 'else '}if (c < ${start + b.channels}u) { pos = ${pos}; j = c - ${start}u; nfreq = ${half}u; fbase = ${fixed64(base ** (-1 / half))}; }`);
    start += b.channels;
  });
  body.push(
    'let sc = sinusoid(pos, fbase, j % nfreq);',
    'let v = select(sc.y, sc.x, j < nfreq); // sin half, then cos half',
    `b_out[${p.out.offset}u + m * ${p.out.strides[0]}u + c * ${p.out.strides[1]}u] = v;`,
  );
  return flatKernel({
    key: `position-table:${JSON.stringify([p.grid, p.blocks, p.out, base, wg])}`,
    decls: ['@group(0) @binding(0) var<storage, read_write> b_out: array<f32>;', SINUSOID_WGSL],
    wg, total: numel(p.grid) * dim, body, bindings: [{ name: 'out', access: 'read_write' }],
  });
}

export function positionTableReference(p: PositionTableParams): Float64Array {
  checkTable(p);
  const base = p.base ?? 10000;
  const out = new Float64Array(extent(p.out)).fill(NaN);
  const coords = new Array(p.grid.length).fill(0);
  for (let m = 0; m < numel(p.grid); m++) {
    let r = m;
    for (let a = p.grid.length - 1; a >= 0; a--) { coords[a] = r % p.grid[a]; r = Math.floor(r / p.grid[a]); }
    let c = 0;
    for (const b of p.blocks) {
      const half = b.channels / 2;
      for (let j = 0; j < b.channels; j++, c++) {
        const arg = coords[b.axis] * (b.scale ?? 1) / base ** ((j % half) / half);
        out[p.out.offset + m * p.out.strides[0] + c * p.out.strides[1]] = j < half ? Math.sin(arg) : Math.cos(arg);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- embedding gather

export interface GatherParams {
  /** [rows, dim]; a classifier-free-guidance null class is simply one more row */
  table: View;
  /** number of ids, read as i32 from ids[idsOffset ..] */
  n: number;
  idsOffset?: number;
  /** [n, dim] */
  out: View;
  workgroupSize?: number;
}

/**
 * out[i, :] = table[clamp(ids[i], 0, rows - 1), :]. Bounds policy: an out-of-range id is clamped to
 * the nearest valid row (never a read outside the table); validate ids on the host to reject them.
 */
export function gatherKernel(p: GatherParams): KernelSpec {
  const [rows, dim] = checkGather(p);
  const wg = p.workgroupSize ?? 64;
  const body = [
    `let c = flat % ${dim}u;`,
    `let i = flat / ${dim}u;`,
    `let row = u32(clamp(b_ids[${p.idsOffset ?? 0}u + i], 0, ${rows - 1}));`,
    `b_out[${p.out.offset}u + i * ${p.out.strides[0]}u + c * ${p.out.strides[1]}u] = b_table[${p.table.offset}u + row * ${p.table.strides[0]}u + c * ${p.table.strides[1]}u];`,
  ];
  return flatKernel({
    key: `gather:${JSON.stringify([p.table, p.n, p.idsOffset ?? 0, p.out, wg])}`,
    decls: [
      '@group(0) @binding(0) var<storage, read> b_table: array<f32>;',
      '@group(0) @binding(1) var<storage, read> b_ids: array<i32>;',
      '@group(0) @binding(2) var<storage, read_write> b_out: array<f32>;',
      '', // no helper functions: an empty line where the sinusoid kernels have them
    ],
    wg, total: p.n * dim, body, bindings: [{ name: 'table', access: 'read' }, { name: 'ids', access: 'read' }, { name: 'out', access: 'read_write' }],
  });
}

function checkGather(p: GatherParams): [number, number] {
  if (p.table.shape.length !== 2 || p.table.shape.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`gather: table must have shape [rows, dim] (got [${p.table.shape}])`);
  }
  if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`gather: n must be a positive integer (got ${p.n})`);
  checkOut('gather', p.out, p.n, p.table.shape[1]);
  return [p.table.shape[0], p.table.shape[1]];
}

export function gatherReference(p: GatherParams, table: ArrayLike<number>, ids: ArrayLike<number>): Float64Array {
  const [rows, dim] = checkGather(p);
  const out = new Float64Array(extent(p.out)).fill(NaN);
  for (let i = 0; i < p.n; i++) {
    const row = Math.min(Math.max(ids[(p.idsOffset ?? 0) + i], 0), rows - 1);
    for (let c = 0; c < dim; c++) {
      out[p.out.offset + i * p.out.strides[0] + c * p.out.strides[1]] = table[p.table.offset + row * p.table.strides[0] + c * p.table.strides[1]];
    }
  }
  return out;
}
