// Backward of pooling and resizing (resample.ts) as gathers: one invocation per element of dx sums
// the outputs that read that element, in a fixed order (deterministic, no atomics), and writes it
// once; an element no output reads gets 0.
//  - poolBackwardKernel: avg: dx[i] = dy[window(i)] / window size. max: dy[window(i)] where i is the
//    window's first largest element in row-major order of x's axes (the forward's max), else 0;
//    each invocation rescans its window (windows are small). Elements in a dropped ragged tail: 0.
//  - resizeBackwardKernel: the transpose of the resize: per resized axis the outputs whose source
//    interval touches i form one contiguous range, computed in integers from the forward's source
//    rule, and each contributes dy times its weight on i (a product over the resized axes).
import { flatKernel, type KernelSpec } from './kernel.ts';
import { extent, forEachIndex, numel, wgslCoords, type View } from './view.ts';
import { forEachResizeTap, pooledShape, SOURCE_WGSL } from './resample.ts';
import { f32Literal } from './expr.ts';

export interface PoolBackwardParams {
  op: 'avg' | 'max';
  /** [..]: the forward's input, read by 'max' only */
  x: View;
  /** window size = stride per axis of x (1: the axis is not pooled) */
  factors: readonly number[];
  /** floor(x.shape / factors): d loss / d pooled */
  dy: View;
  /** x's shape: written, every element */
  dx: View;
  workgroupSize?: number;
}

export interface ResizeBackwardParams {
  mode: 'nearest' | 'linear';
  /** the resized shape: d loss / d resized */
  dy: View;
  /** the source shape: written, every element; axes of dy's size were copied */
  dx: View;
  workgroupSize?: number;
}

const u = (n: number) => `${n}u`;
const offsetOf = (v: View, idx: readonly number[]) => idx.reduce((o, c, a) => o + c * v.strides[a], v.offset);
const dot = (v: View, coords: readonly string[]) =>
  [u(v.offset), ...coords.flatMap((c, a) => (v.strides[a] === 0 ? [] : [v.strides[a] === 1 ? c : `${c} * ${u(v.strides[a])}`]))].join(' + ');

function checkViews(what: string, views: [string, View][], rank: number): void {
  for (const [name, v] of views) {
    if (v.shape.length !== rank || v.strides.length !== rank) throw new Error(`${what}: ${name} must have rank ${rank}, got shape [${v.shape}]`);
    if ([...v.shape, ...v.strides, v.offset].some((n) => !Number.isInteger(n) || n < 0) || v.shape.some((n) => n < 1)) {
      throw new Error(`${what}: ${name} needs positive sizes and non-negative integer strides and offset`);
    }
  }
  const dx = views.find(([n]) => n === 'dx')![1];
  if (dx.shape.some((n, a) => n > 1 && dx.strides[a] === 0)) throw new Error(`${what}: dx must not broadcast`);
}

function workgroupSizeOf(what: string, p: { workgroupSize?: number }): number {
  const wg = p.workgroupSize ?? 64;
  if (!Number.isInteger(wg) || wg < 1 || wg > 256) throw new Error(`${what}: workgroupSize must be an integer between 1 and 256 (got ${wg})`);
  return wg;
}

// ---------------------------------------------------------------- pooling

function checkPoolBackward(p: PoolBackwardParams): void {
  const rank = p.dx.shape.length;
  checkViews('pool backward', [['x', p.x], ['dy', p.dy], ['dx', p.dx]], rank);
  if (p.op !== 'avg' && p.op !== 'max') throw new Error(`pool backward: unknown op '${p.op}'`);
  if (p.factors.length !== rank || p.factors.some((f, a) => !Number.isInteger(f) || f < 1 || f > p.dx.shape[a])) {
    throw new Error(`pool backward: factors [${p.factors}] must be integers between 1 and the axis sizes [${p.dx.shape}]`);
  }
  if (p.x.shape.some((n, a) => n !== p.dx.shape[a])) throw new Error(`pool backward: x has shape [${p.x.shape}], dx [${p.dx.shape}]`);
  const want = pooledShape(p.dx.shape, p.factors);
  if (want.some((n, a) => n !== p.dy.shape[a])) throw new Error(`pool backward: dy has shape [${p.dy.shape}], expected [${want}]`);
}

/** Bindings: max: x, dy, dx; avg: dy, dx. */
export function poolBackwardKernel(p: PoolBackwardParams): KernelSpec {
  checkPoolBackward(p);
  const wg = workgroupSizeOf('pool backward', p);
  const rank = p.dx.shape.length;
  const axes = [...Array(rank).keys()];
  const pooled = axes.filter((a) => p.factors[a] > 1);
  const ragged = pooled.filter((a) => p.dx.shape[a] % p.factors[a] !== 0);
  const body = [
    ...wgslCoords(p.dx.shape, 'flat', 'i'),
    ...axes.map((a) => `let q${a} = ${p.factors[a] > 1 ? `i${a} / ${u(p.factors[a])}` : `i${a}`};`),
    `let dxAt = ${dot(p.dx, axes.map((a) => `i${a}`))};`,
  ];
  if (ragged.length) body.push(`if (${ragged.map((a) => `q${a} >= ${u(p.dy.shape[a])}`).join(' || ')}) { dx_buf[dxAt] = 0.0; return; }`);
  body.push(`let g = dy_buf[${dot(p.dy, axes.map((a) => `q${a}`))}];`);
  if (p.op === 'avg') {
    body.push(`dx_buf[dxAt] = g / ${f32Literal(numel(p.factors))};`);
  } else {
    // The window's first largest element (strict >, in row-major order over the pooled axes), and
    // this element's place in that order.
    const win = pooled.map((a) => p.factors[a]);
    const base = dot(p.x, axes.map((a) => (p.factors[a] > 1 ? `q${a} * ${u(p.factors[a])}` : `i${a}`)));
    const mine = pooled.reduce((e, a, k) => (k === 0 ? `(i${a} % ${u(p.factors[a])})` : `(${e}) * ${u(win[k])} + i${a} % ${u(p.factors[a])}`), '0u');
    const step = pooled.map((a, k) => `w${k} * ${u(p.x.strides[a])}`);
    body.push(
      `let base = ${base};`,
      'var best = x_buf[base];',
      'var arg = 0u;',
      `for (var e = 1u; e < ${u(numel(win))}; e++) {`,
      ...wgslCoords(win, 'e', 'w').map((l) => `  ${l}`),
      `  let v = x_buf[${['base', ...step].join(' + ')}];`,
      '  if (v > best) { best = v; arg = e; }',
      '}',
      `dx_buf[dxAt] = select(0.0, g, arg == ${mine});`,
    );
  }
  const max = p.op === 'max';
  const names = [...(max ? ['x'] : []), 'dy', 'dx'];
  const decls = names.map((n, k) => `@group(0) @binding(${k}) var<storage, ${n === 'dx' ? 'read_write' : 'read'}> ${n}_buf: array<f32>;`);
  return flatKernel({
    key: `pool-backward:${JSON.stringify([p.op, max ? p.x : 0, p.factors, p.dy, p.dx, wg])}`, decls, wg, total: numel(p.dx.shape), body,
    bindings: names.map((n) => ({ name: n, access: n === 'dx' ? 'read_write' as const : 'read' as const })),
  });
}

/** Float64 reference: the dx buffer (extent(dx) elements, NaN where the view does not reach). */
export function poolBackwardReference(p: PoolBackwardParams, x: ArrayLike<number> | undefined, dy: ArrayLike<number>): Float64Array {
  checkPoolBackward(p);
  const dx = new Float64Array(extent(p.dx)).fill(NaN);
  forEachIndex(p.dx.shape, (i) => { dx[offsetOf(p.dx, i)] = 0; });
  const vol = numel(p.factors);
  forEachIndex(p.dy.shape, (q) => {
    const g = dy[offsetOf(p.dy, q)];
    let best = -Infinity;
    let arg: number[] = [];
    forEachIndex(p.factors, (w) => {
      const i = q.map((c, a) => c * p.factors[a] + w[a]);
      if (p.op === 'avg') { dx[offsetOf(p.dx, i)] += g / vol; return; }
      const v = x![offsetOf(p.x, i)];
      if (v > best) { best = v; arg = i; }
    });
    if (p.op === 'max') dx[offsetOf(p.dx, arg)] += g;
  });
  return dx;
}

// ---------------------------------------------------------------- resizing

// The forward's source rule (resample.ts), and the first output whose lower source index i0 is at
// least j: with num = (2o + 1) n, i0 = (num - m) / 2m (0 while num <= m), so i0 >= j >= 1 iff
// (2o + 1) n >= (2j + 1) m. An element i is read (as i0 or as i1 = i0 + 1, clamped) by the outputs
// from first(i - 1) to first(i + 1); its weight there is (1 - f) where i0 = i plus f where i1 = i.
const LINEAR_PRELUDE = [
  ...SOURCE_WGSL,
  'fn first_reader(j: i32, n: u32, m: u32) -> u32 {',
  '  if (j <= 0i) { return 0u; }',
  '  if (u32(j) >= n) { return m; }',
  '  let num = i32(m) * (2i * j + 1i) - i32(n);',
  '  if (num <= 0i) { return 0u; }',
  '  return min(m, u32((num + 2i * i32(n) - 1i) / (2i * i32(n))));',
  '}',
];

function checkResizeBackward(p: ResizeBackwardParams): number[] {
  const rank = p.dx.shape.length;
  checkViews('resize backward', [['dy', p.dy], ['dx', p.dx]], rank);
  if (p.mode !== 'nearest' && p.mode !== 'linear') throw new Error(`resize backward: unknown mode '${p.mode}'`);
  const resized = [...Array(rank).keys()].filter((a) => p.dx.shape[a] !== p.dy.shape[a]);
  for (const a of resized) {
    if (4 * p.dx.shape[a] * p.dy.shape[a] >= 2 ** 31) throw new Error(`resize backward: axis ${a} (${p.dx.shape[a]} -> ${p.dy.shape[a]}) is too long for 32-bit source coordinates`);
  }
  return resized;
}

/** Bindings: dy, dx. */
export function resizeBackwardKernel(p: ResizeBackwardParams): KernelSpec {
  const resized = checkResizeBackward(p);
  const wg = workgroupSizeOf('resize backward', p);
  const rank = p.dx.shape.length;
  const axes = [...Array(rank).keys()];
  const linear = p.mode === 'linear';
  const body = [
    ...wgslCoords(p.dx.shape, 'flat', 'i'),
    // axes of equal size are copied: output index = input index
    `let base = ${dot({ ...p.dy, strides: p.dy.strides.map((s, a) => (resized.includes(a) ? 0 : s)) }, axes.map((a) => `i${a}`))};`,
    'var acc = 0.0;',
  ];
  let depth = '';
  let weight = '';
  for (const a of resized) {
    const [n, m] = [p.dx.shape[a], p.dy.shape[a]];
    const [lo, hi] = linear
      ? [`first_reader(i32(i${a}) - 1i, ${u(n)}, ${u(m)})`, `first_reader(i32(i${a}) + 1i, ${u(n)}, ${u(m)})`]
      : [`(i${a} * ${u(m)} + ${u(n - 1)}) / ${u(n)}`, `min(((i${a} + 1u) * ${u(m)} + ${u(n - 1)}) / ${u(n)}, ${u(m)})`];
    body.push(`${depth}for (var o${a} = ${lo}; o${a} < ${hi}; o${a}++) {`);
    depth += '  ';
    if (linear) {
      body.push(`${depth}let s${a} = source(o${a}, ${u(n)}, ${u(m)});`);
      const w = `select(0.0, 1.0 - s${a}.z, u32(s${a}.x) == i${a}) + select(0.0, s${a}.z, u32(s${a}.y) == i${a})`;
      body.push(`${depth}let w${a} = ${weight ? `${weight} * (${w})` : w};`);
      weight = `w${a}`;
    }
  }
  const at = ['base', ...resized.map((a) => (p.dy.strides[a] === 1 ? `o${a}` : `o${a} * ${u(p.dy.strides[a])}`))].join(' + ');
  body.push(`${depth}acc += ${weight ? `${weight} * ` : ''}dy_buf[${at}];`);
  for (let k = 0; k < resized.length; k++) { depth = depth.slice(2); body.push(`${depth}}`); }
  body.push(`dx_buf[${dot(p.dx, axes.map((a) => `i${a}`))}] = acc;`);
  const decls = [
    '@group(0) @binding(0) var<storage, read> dy_buf: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> dx_buf: array<f32>;',
  ];
  return flatKernel({
    key: `resize-backward-${p.mode}:${JSON.stringify([p.dy, p.dx, wg])}`, decls: [...decls, ...(linear ? LINEAR_PRELUDE : [])], wg,
    total: numel(p.dx.shape), body, bindings: [{ name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
  });
}

/** Float64 reference (the transpose of resizeReference): the dx buffer (extent(dx) elements, NaN where the view does not reach). */
export function resizeBackwardReference(p: ResizeBackwardParams, dy: ArrayLike<number>): Float64Array {
  checkResizeBackward(p);
  const dx = new Float64Array(extent(p.dx)).fill(NaN);
  forEachIndex(p.dx.shape, (i) => { dx[offsetOf(p.dx, i)] = 0; });
  forEachIndex(p.dy.shape, (o) => {
    const g = dy[offsetOf(p.dy, o)];
    forEachResizeTap(p.mode, p.dx, p.dy.shape, o, (off, w) => { dx[off] += w * g; });
  });
  return dx;
}
