// Pooling (avg, max; window = stride = an integer factor per axis) and resampling (nearest,
// separable linear: 1D/2D/3D trilinear with align_corners=false as PyTorch) over chosen axes
// of strided views. One invocation per output element.
import { flatKernel, type KernelSpec } from './kernel.ts';
import { coalesce, extent, forEachIndex, numel, stridesOver, wgslCoords, wgslDot, type View } from './view.ts';
import { f32Literal } from './expr.ts';

export interface PoolParams {
  op: 'avg' | 'max';
  x: View;
  /** window size = stride per axis of x; 1 leaves the axis alone */
  factors: readonly number[];
  /** shape floor(x.shape / factors), as PyTorch's pooling without padding (a ragged tail is dropped) */
  y: View;
  workgroupSize?: number;
}

export interface ResizeParams {
  /** 'nearest': source index floor(o * in / out) in exact integer arithmetic (PyTorch 'nearest' for
   *  integer factors). 'linear': align_corners=false, source (o + 0.5) * in / out - 0.5 clamped at 0,
   *  blended linearly along every axis whose size changes (bi-/trilinear when two or three do). */
  mode: 'nearest' | 'linear';
  x: View;
  /** the target shape is y.shape; axes of equal size are copied */
  y: View;
  workgroupSize?: number;
}

/** Shape of x after pooling by `factors`. */
export const pooledShape = (shape: readonly number[], factors: readonly number[]) => shape.map((n, i) => Math.floor(n / factors[i]));
/** Shape of x after upsampling by integer `factors`. */
export const upsampledShape = (shape: readonly number[], factors: readonly number[]) => shape.map((n, i) => n * factors[i]);

const IO = [
  '@group(0) @binding(0) var<storage, read> b_x: array<f32>;',
  '@group(0) @binding(1) var<storage, read_write> b_y: array<f32>;',
];

/** WGSL: the linear resize's source rule, (i0, i1, weight of i1) of output index o along n -> m; the backward reads it too. */
export const SOURCE_WGSL = [
  'fn source(o: u32, n: u32, m: u32) -> vec3f {',
  '  let num = (2u * o + 1u) * n;',
  '  if (num <= m) { return vec3f(0.0, f32(min(1u, n - 1u)), 0.0); }',
  '  let i0 = min((num - m) / (2u * m), n - 1u);',
  '  return vec3f(f32(i0), f32(min(i0 + 1u, n - 1u)), f32((num - m) - i0 * 2u * m) / f32(2u * m));',
  '}',
];

function kernelShell(name: string, key: unknown[], total: number, wg: number, body: string[], prelude: string[] = []): KernelSpec {
  return flatKernel({
    key: `${name}:${JSON.stringify(key)}`, decls: [...IO, ...prelude], wg, total, body, index: 'out',
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
  });
}

function checkShapes(what: string, x: View, y: View) {
  if (x.shape.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${what}: bad x shape [${x.shape}]`);
  if (y.shape.length !== x.shape.length) throw new Error(`${what}: y has rank ${y.shape.length}, x has rank ${x.shape.length}`);
  if (y.shape.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${what}: bad y shape [${y.shape}]`);
}

// ---------------------------------------------------------------- pooling

function checkPool(p: PoolParams) {
  checkShapes('pool', p.x, p.y);
  if (p.op !== 'avg' && p.op !== 'max') throw new Error(`pool: unknown op '${p.op}'`);
  if (p.factors.length !== p.x.shape.length || p.factors.some((f, i) => !Number.isInteger(f) || f < 1 || f > p.x.shape[i])) {
    throw new Error(`pool: factors [${p.factors}] must be integers between 1 and the axis sizes [${p.x.shape}]`);
  }
  const want = pooledShape(p.x.shape, p.factors);
  if (want.some((n, i) => n !== p.y.shape[i])) throw new Error(`pool: y has shape [${p.y.shape}], expected [${want}]`);
}

export function poolKernel(p: PoolParams): KernelSpec {
  checkPool(p);
  const wg = p.workgroupSize ?? 64;
  const xs = p.x.strides;
  const out = coalesce(p.y.shape, [xs.map((s, i) => s * p.factors[i]), p.y.strides]);
  const pooledAxes = p.factors.flatMap((f, i) => (f > 1 ? [i] : []));
  const win = coalesce(pooledAxes.map((a) => p.factors[a]), [pooledAxes.map((a) => xs[a])]);
  const windowSize = numel(p.factors);
  const at = `b_x[base + ${wgslDot(0, win.strides[0], 'w')}]`;
  const body = [
    ...wgslCoords(out.shape, 'out', 'o'),
    `let base = ${wgslDot(p.x.offset, out.strides[0], 'o')};`,
    'var acc = b_x[base];',
    `for (var e: u32 = 1u; e < ${windowSize}u; e++) {`,
    ...wgslCoords(win.shape, 'e', 'w').map((l) => `  ${l}`),
    p.op === 'max' ? `  acc = max(acc, ${at});` : `  acc += ${at};`,
    '}',
    `b_y[${wgslDot(p.y.offset, out.strides[1], 'o')}] = acc${p.op === 'avg' ? ` / ${f32Literal(windowSize)}` : ''};`,
  ];
  return kernelShell('pool', [p.op, p.x, p.factors, p.y, wg], numel(p.y.shape), wg, body);
}

export function poolReference(p: PoolParams, x: ArrayLike<number>): Float64Array {
  checkPool(p);
  const y = new Float64Array(extent(p.y)).fill(NaN);
  forEachIndex(p.y.shape, (o) => {
    let acc = p.op === 'max' ? -Infinity : 0;
    forEachIndex(p.factors, (w) => {
      const v = x[o.reduce((s, c, a) => s + (c * p.factors[a] + w[a]) * p.x.strides[a], p.x.offset)];
      acc = p.op === 'max' ? Math.max(acc, v) : acc + v;
    });
    y[offsetOf(p.y, o)] = p.op === 'avg' ? acc / numel(p.factors) : acc;
  });
  return y;
}

// ---------------------------------------------------------------- resizing

function checkResize(p: ResizeParams) {
  checkShapes('resize', p.x, p.y);
  if (p.mode !== 'nearest' && p.mode !== 'linear') throw new Error(`resize: unknown mode '${p.mode}'`);
}

export function resizeKernel(p: ResizeParams): KernelSpec {
  checkResize(p);
  const wg = p.workgroupSize ?? 64;
  const rank = p.x.shape.length;
  const resized = [...Array(rank).keys()].filter((a) => p.x.shape[a] !== p.y.shape[a]);
  const yStrides = stridesOver(p.y, p.y.shape, 'y');
  const body = [...wgslCoords(p.y.shape, 'out', 'o')];
  // Axes of equal size contribute o_a * stride directly; resized axes get source indices.
  const copied = p.x.strides.map((s, a) => (resized.includes(a) ? 0 : s));
  body.push(`let base = ${wgslDot(p.x.offset, copied, 'o')};`);
  let prelude: string[] = [];
  if (p.mode === 'nearest') {
    const terms = resized.map((a) => `((o${a} * ${p.x.shape[a]}u) / ${p.y.shape[a]}u) * ${p.x.strides[a]}u`);
    body.push(`let v = b_x[${['base', ...terms].join(' + ')}];`);
  } else {
    prelude = [
      '// Source interval and weight of output index o along an axis of n -> m elements (align_corners=false):',
      '// s = (o + 0.5) * n / m - 0.5 = ((2o + 1) n - m) / 2m, in integers so that only the weight is rounded.',
      ...SOURCE_WGSL,
    ];
    for (const a of resized) {
      if (2 * p.x.shape[a] * p.y.shape[a] >= 2 ** 32) throw new Error(`resize: axis ${a} (${p.x.shape[a]} -> ${p.y.shape[a]}) is too long for 32-bit source coordinates`);
      body.push(`let s${a} = source(o${a}, ${p.x.shape[a]}u, ${p.y.shape[a]}u);`);
    }
    body.push('var v = 0.0;', `for (var c: u32 = 0u; c < ${1 << resized.length}u; c++) {`);
    // bit k of corner c: upper (i1) or lower (i0) neighbour along the k-th resized axis
    body.push(...resized.map((a, k) => `  let hi${a} = ((c >> ${k}u) & 1u) == 1u;`));
    const scaled = (a: number) => (p.x.strides[a] === 1 ? '' : ` * ${p.x.strides[a]}u`);
    const offset = ['base', ...resized.map((a) => `u32(select(s${a}.x, s${a}.y, hi${a}))${scaled(a)}`)].join(' + ');
    const weight = resized.map((a) => `select(1.0 - s${a}.z, s${a}.z, hi${a})`).join(' * ') || '1.0';
    body.push(`  v += ${weight} * b_x[${offset}];`, '}');
  }
  body.push(`b_y[${wgslDot(p.y.offset, yStrides, 'o')}] = v;`);
  return kernelShell(`resize-${p.mode}`, [p.x, p.y, wg], numel(p.y.shape), wg, body, prelude);
}

/** Float64 reference of resizeKernel. */
export function resizeReference(p: ResizeParams, x: ArrayLike<number>): Float64Array {
  checkResize(p);
  const y = new Float64Array(extent(p.y)).fill(NaN);
  forEachIndex(p.y.shape, (o) => {
    let v = 0;
    forEachResizeTap(p.mode, p.x, p.y.shape, o, (off, w) => { v += w * x[off]; });
    y[offsetOf(p.y, o)] = v;
  });
  return y;
}

/**
 * f(offset in src, weight) for every source element that output index `o` of a resize to `dstShape`
 * blends, in a fixed order: the float64 source rule, shared by the forward and backward references.
 */
export function forEachResizeTap(mode: ResizeParams['mode'], src: View, dstShape: readonly number[], o: readonly number[],
  f: (offset: number, weight: number) => void): void {
  // per axis: [(index, weight), ...] contributions
  const taps = o.map((c, a) => {
    const n = src.shape[a], m = dstShape[a];
    if (n === m) return [[c, 1]];
    if (mode === 'nearest') return [[Math.floor((c * n) / m), 1]];
    const s = Math.max((c + 0.5) * (n / m) - 0.5, 0);
    const i0 = Math.min(Math.floor(s), n - 1);
    return [[i0, 1 - (s - i0)], [Math.min(i0 + 1, n - 1), s - i0]];
  });
  forEachIndex(taps.map((t) => t.length), (k) => {
    let w = 1, off = src.offset;
    for (let a = 0; a < src.shape.length; a++) { const [i, wa] = taps[a][k[a]]; w *= wa; off += i * src.strides[a]; }
    f(off, w);
  });
}

// ---------------------------------------------------------------- helpers

const offsetOf = (v: View, idx: readonly number[]) => idx.reduce((o, c, a) => o + c * v.strides[a], v.offset);
