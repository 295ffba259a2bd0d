// Reductions: sum / mean over any set of axes of a strided view, and the global L2 norm of a
// buffer as a two-stage reduction (per-workgroup partial sums of squares, then one workgroup).
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelBinding, type KernelSpec } from './kernel.ts';
import { coalesce, extent, numel, permute, stridesOver, wgslCoords, wgslDot, type View } from './view.ts';
import { f32Literal } from './expr.ts';

/** WGSL: `workgroup_sum(v, lid)`, a tree sum over a power-of-two workgroup that every invocation receives. */
export function workgroupSumWgsl(wg: number): string {
  if (!Number.isInteger(Math.log2(wg))) throw new Error(`workgroup size must be a power of two (got ${wg})`);
  return `var<workgroup> red: array<f32, ${wg}>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s: u32 = ${wg >> 1}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next call
  return total;
}`;
}


/** A kernel whose workgroups each reduce their invocations' `acc` with workgroup_sum (workgroupSumKernel). */
export interface WorkgroupSumKernelParams {
  key: string;
  decls: string[];
  bindings: KernelBinding[];
  wg: number;
  /** workgroups, g the index of each; absent: a single workgroup */
  groups?: number;
  /** statements after the bounds check, before the accumulation */
  head?: string[];
  /** the loop adding this invocation's terms into `acc` */
  accumulate: string[];
  /** what invocation 0 does with the workgroup's `total` */
  store: string;
}

/** The tree-sum kernel shape of the L2 norm stages and the optimizer's gradient norm partials. */
export function workgroupSumKernel(k: WorkgroupSumKernelParams): KernelSpec {
  const grid = k.groups !== undefined;
  const wgsl = [
    ...k.decls,
    workgroupSumWgsl(k.wg),
    `@compute @workgroup_size(${k.wg})`,
    ...(grid ? [GRID_MAIN, `  let g = ${GRID_WORKGROUP};`, `  if (g >= ${k.groups}u) { return; }`] : ['fn main(@builtin(local_invocation_index) lid: u32) {']),
    ...(k.head ?? []),
    '  var acc = 0.0;',
    ...k.accumulate,
    '  let total = workgroup_sum(acc, lid);',
    `  if (lid == 0u) { ${k.store} }`,
    '}',
    '',
  ].join('\n');
  return { key: k.key, wgsl, entryPoint: 'main', bindings: k.bindings, dispatch: grid ? gridFor(k.groups!) : [1, 1, 1] };
}

export interface ReduceParams {
  op: 'sum' | 'mean';
  x: View;
  /** axes of x to reduce (any set, any order) */
  axes: readonly number[];
  /** shape: the kept axes of x, in order ([] for a full reduction) */
  y: View;
  /** 'thread': one invocation per output loops over its elements; 'workgroup': one workgroup per output
   *  with a tree sum. Default: 'workgroup' from 256 reduced elements per output on. */
  strategy?: 'thread' | 'workgroup';
  workgroupSize?: number;
}

function layout(p: ReduceParams) {
  const rank = p.x.shape.length;
  if (p.op !== 'sum' && p.op !== 'mean') throw new Error(`reduce: unknown op '${p.op}'`);
  const axes = [...p.axes];
  if (axes.some((a) => !Number.isInteger(a) || a < 0 || a >= rank) || new Set(axes).size !== axes.length) {
    throw new Error(`reduce: axes [${axes}] must be distinct axes of a rank-${rank} tensor`);
  }
  const kept = [...Array(rank).keys()].filter((a) => !axes.includes(a));
  const x = permute(p.x, [...kept, ...axes]); // [kept..., reduced...]
  const keptShape = x.shape.slice(0, kept.length);
  if (p.y.shape.length !== kept.length || p.y.shape.some((n, i) => n !== keptShape[i])) {
    throw new Error(`reduce: y has shape [${p.y.shape}], expected the kept axes [${keptShape}]`);
  }
  if (x.shape.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`reduce: bad shape [${p.x.shape}]`);
  return { x, keptShape, reducedShape: x.shape.slice(kept.length), outputs: numel(keptShape), n: numel(x.shape.slice(kept.length)) };
}

export function reduceKernel(p: ReduceParams): KernelSpec {
  const { x, keptShape, reducedShape, outputs, n } = layout(p);
  const strategy = p.strategy ?? (n >= 256 ? 'workgroup' : 'thread');
  const wg = p.workgroupSize ?? 64;
  const k = keptShape.length;
  const xs = stridesOver(x, x.shape, 'x');
  const outer = coalesce(keptShape, [xs.slice(0, k), stridesOver(p.y, keptShape, 'y')]);
  const inner = coalesce(reducedShape, [xs.slice(k)]);
  const finish = p.op === 'mean' ? ` / ${f32Literal(n)}` : '';
  const perOutput = strategy === 'workgroup'
    ? { first: 'lid', step: wg, index: GRID_WORKGROUP, total: 'workgroup_sum(acc, lid)', store: 'if (lid == 0u) { ' }
    : { first: '0u', step: 1, index: `(${GRID_WORKGROUP}) * ${wg}u + lid`, total: 'acc', store: '{ ' };
  const wgsl = [
    '@group(0) @binding(0) var<storage, read> b_x: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> b_y: array<f32>;',
    strategy === 'workgroup' ? workgroupSumWgsl(wg) : '',
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let out = ${perOutput.index};`,
    `  if (out >= ${outputs}u) { return; }`,
    ...wgslCoords(outer.shape, 'out', 'o').map((l) => `  ${l}`),
    `  let base = ${wgslDot(x.offset, outer.strides[0], 'o')};`,
    '  var acc = 0.0;',
    `  for (var e: u32 = ${perOutput.first}; e < ${n}u; e += ${perOutput.step}u) {`,
    ...wgslCoords(inner.shape, 'e', 'c').map((l) => `    ${l}`),
    `    acc += b_x[base + ${wgslDot(0, inner.strides[0], 'c')}];`,
    '  }',
    `  let total = ${perOutput.total}${finish};`,
    `  ${perOutput.store}b_y[${wgslDot(p.y.offset, outer.strides[1], 'o')}] = total; }`,
    '}',
    '',
  ].join('\n');
  return {
    key: `reduce:${JSON.stringify([p.op, p.x, p.axes, p.y, strategy, wg])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
    dispatch: gridFor(strategy === 'workgroup' ? outputs : Math.ceil(outputs / wg)),
  };
}

/** Float64 reference: the y buffer (extent(y) elements, NaN where y does not reach). */
export function reduceReference(p: ReduceParams, xData: ArrayLike<number>): Float64Array {
  const { x, keptShape, outputs, n } = layout(p);
  const y = new Float64Array(extent(p.y)).fill(NaN);
  const idx = new Array(x.shape.length).fill(0);
  for (let out = 0; out < outputs; out++) {
    let acc = 0;
    for (let e = 0; e < n; e++) {
      let r = out * n + e;
      for (let a = x.shape.length - 1; a >= 0; a--) { idx[a] = r % x.shape[a]; r = Math.floor(r / x.shape[a]); }
      acc += xData[idx.reduce((o, c, a) => o + c * x.strides[a], x.offset)];
    }
    const at = idx.slice(0, keptShape.length).reduce((o, c, a) => o + c * p.y.strides[a], p.y.offset);
    y[at] = p.op === 'mean' ? acc / n : acc;
  }
  return y;
}

// ---------------------------------------------------------------- global L2 norm

export interface L2PartialsParams {
  /** elements x[offset .. offset + n) are reduced */
  n: number;
  offset?: number;
  /** number of partial sums (workgroups); default: one per 16 workgroup-widths of data, at most 1024 */
  partials?: number;
  /** where this buffer's partials start in the partials buffer: several buffers can share one */
  partialOffset?: number;
  workgroupSize?: number;
}

export function defaultPartials(n: number, wg = 64): number {
  return Math.max(1, Math.min(1024, Math.ceil(n / (16 * wg))));
}

/** Stage 1: partials[partialOffset + g] = sum of x^2 over a grid-strided share of the buffer. */
export function l2PartialsKernel(p: L2PartialsParams): KernelSpec {
  const wg = p.workgroupSize ?? 64;
  const parts = p.partials ?? defaultPartials(p.n, wg);
  const offset = p.offset ?? 0;
  const partialOffset = p.partialOffset ?? 0;
  if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`l2 norm: n must be a positive integer (got ${p.n})`);
  if (!Number.isInteger(parts) || parts < 1) throw new Error(`l2 norm: partials must be a positive integer (got ${parts})`);
  return workgroupSumKernel({
    key: `l2partials:${JSON.stringify([p.n, offset, parts, partialOffset, wg])}`,
    decls: ['@group(0) @binding(0) var<storage, read> b_x: array<f32>;', '@group(0) @binding(1) var<storage, read_write> b_partials: array<f32>;'],
    bindings: [{ name: 'x', access: 'read' }, { name: 'partials', access: 'read_write' }],
    wg,
    groups: parts,
    accumulate: [
      `  for (var i: u32 = g * ${wg}u + lid; i < ${p.n}u; i += ${parts * wg}u) {`,
      `    let v = b_x[${offset}u + i];`,
      '    acc += v * v;',
      '  }',
    ],
    store: `b_partials[${partialOffset}u + g] = total;`,
  });
}

/** Stage 2: norm[0] = sqrt(sum of the first `count` partials), by one workgroup. */
export function l2FinishKernel(count: number, workgroupSize = 64): KernelSpec {
  const wg = workgroupSize;
  if (!Number.isInteger(count) || count < 1) throw new Error(`l2 norm: count must be a positive integer (got ${count})`);
  return workgroupSumKernel({
    key: `l2finish:${count}:${wg}`,
    decls: ['@group(0) @binding(0) var<storage, read> b_partials: array<f32>;', '@group(0) @binding(1) var<storage, read_write> b_norm: array<f32>;'],
    bindings: [{ name: 'partials', access: 'read' }, { name: 'norm', access: 'read_write' }],
    wg,
    accumulate: [`  for (var i: u32 = lid; i < ${count}u; i += ${wg}u) { acc += b_partials[i]; }`],
    store: 'b_norm[0] = sqrt(total);',
  });
}

/** Float64 reference of the L2 norm of x[offset .. offset + n). */
export function l2NormReference(x: ArrayLike<number>, n: number, offset = 0): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[offset + i] ** 2;
  return Math.sqrt(s);
}
