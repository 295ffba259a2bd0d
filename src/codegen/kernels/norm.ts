// Layer / group / RMS normalisation: one workgroup per normalised row, a two-pass (shifted mean,
// then centred sum of squares) reduction in workgroup memory, then one fused write that applies the
// optional affine (weight, bias) and the optional adaLN modulation x * (1 + scale) + shift.
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type AdapterTraits, type KernelBinding, type KernelSpec } from './kernel.ts';
import { alongAxes, coalesce, extent, numel, permute, splitAxis, stridesOver, wgslCoords, wgslDot, type View } from './view.ts';
import { f32Literal } from './expr.ts';
import { workgroupSumWgsl } from './reduce.ts';

/** 'group' is 'layer' statistics over a group view (see groupNormView); 'rms' skips the mean. */
export type NormKind = 'layer' | 'group' | 'rms';

export interface NormParams {
  kind: NormKind;
  /** x and y share one shape: leading axes index rows, the trailing `normalizedAxes` are normalised together */
  x: View;
  y: View;
  normalizedAxes: number;
  eps: number;
  /** optional views over the full x shape (stride 0 where they broadcast), applied in this order: */
  weight?: View;
  bias?: View;
  scale?: View;
  shift?: View;
  workgroupSize?: number;
  /**
   * Reduce with subgroupAdd inside one subgroup of this many lanes instead of workgroup memory: the
   * workgroup is that one subgroup, so there is no barrier. For adapters whose subgroup size is
   * fixed at this value (a CPU adapter's SIMD width): on lavapipe barriers are what costs.
   */
  subgroupLanes?: number;
}

const OPTIONAL = ['weight', 'bias', 'scale', 'shift'] as const;
type Optional = (typeof OPTIONAL)[number];

/**
 * The group-norm layout of `v`: axis `channelAxis` (size C) is split into (groups, C / groups)
 * and the group axis moved right after the `batchAxes` leading axes, so rows are (batch..., group)
 * and everything else (channels of the group, then the remaining axes) is normalised.
 * `perChannel(offset)` views a [C] parameter buffer over that layout.
 */
export function groupNormView(v: View, channelAxis: number, groups: number, batchAxes = 1) {
  const c = v.shape[channelAxis];
  if (channelAxis < batchAxes) throw new Error('groupNormView: the channel axis must follow the batch axes');
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new Error(`group norm: ${groups} groups do not divide ${c} channels`);
  }
  const split = splitAxis(v, channelAxis, c / groups); // ..., G, C/G, ...
  const rank = split.shape.length;
  const rest = [...Array(rank).keys()].filter((a) => a >= batchAxes && a !== channelAxis && a !== channelAxis + 1);
  const perm = [...Array(batchAxes).keys(), channelAxis, channelAxis + 1, ...rest];
  const view = permute(split, perm);
  return {
    view,
    normalizedAxes: rank - batchAxes - 1,
    perChannel: (offset = 0) => alongAxes(view.shape, [batchAxes, batchAxes + 1], offset),
  };
}

/**
 * The checks the forward and the backward share (`what` prefixes the messages); `y`, when given, must
 * have x's shape.
 */
export function checkNormParams(p: Omit<NormParams, 'y'>, what: string, y?: View): void {
  const rank = p.x.shape.length;
  if (!['layer', 'group', 'rms'].includes(p.kind)) throw new Error(`${what}: unknown kind '${p.kind}'`);
  if (!Number.isInteger(p.normalizedAxes) || p.normalizedAxes < 1 || p.normalizedAxes > rank) {
    throw new Error(`${what}: normalizedAxes must be between 1 and ${rank} (got ${p.normalizedAxes})`);
  }
  if (!(p.eps >= 0) || !Number.isFinite(p.eps)) throw new Error(`${what}: eps must be a finite number >= 0 (got ${p.eps})`);
  if (p.x.shape.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${what}: bad shape [${p.x.shape}]`);
  if (y && (y.shape.length !== rank || y.shape.some((n, i) => n !== p.x.shape[i]))) {
    throw new Error(`${what}: y shape [${y.shape}] differs from x shape [${p.x.shape}]`);
  }
  if ((p.scale === undefined) !== (p.shift === undefined)) throw new Error(`${what}: modulation needs both scale and shift`);
}

/** The invocations per row of a row kernel: the subgroup's lanes, or the workgroup size (default 64). */
export function rowWorkgroupSize(p: Pick<NormParams, 'workgroupSize' | 'subgroupLanes'>, what: string): number {
  if (p.subgroupLanes !== undefined) {
    if (!Number.isInteger(Math.log2(p.subgroupLanes)) || p.subgroupLanes > 128) throw new Error(`${what}: subgroupLanes must be a power of two up to 128 (got ${p.subgroupLanes})`);
    if (p.workgroupSize !== undefined) throw new Error(`${what}: give workgroupSize or subgroupLanes, not both`);
    return p.subgroupLanes;
  }
  const wg = p.workgroupSize ?? 64;
  if (!Number.isInteger(Math.log2(wg))) throw new Error(`${what}: workgroupSize must be a power of two (got ${wg})`);
  return wg;
}

function validate(p: NormParams) {
  checkNormParams(p, 'norm', p.y);
  return rowWorkgroupSize(p, 'norm');
}

/** What the body of a row kernel (normRowKernel) writes with, in the row's scope after its statistics. */
export interface RowScope {
  /** operand `name` at the element the current loop is on */
  at(name: string): string;
  /** a loop over this row's elements, strided by the workgroup size */
  loop(body: string[]): string[];
  /** the sum of `v` over the row's invocations */
  sum(v: string): string;
  /** x - mean at the loop's element (x itself for RMS) */
  centred: string;
  /** elements per row */
  n: number;
}

/** How a row kernel (normRowKernel) is keyed, named in messages and bound. */
export interface RowKernelOptions {
  /** the key's leading word */
  family: string;
  /** prefixes error messages */
  what: string;
  /** the views the body reads and writes per element, over x's shape (x first) */
  operands: { name: string; view: View }[];
  /** in binding order, each a b_<name> array<f32> */
  bindings: KernelBinding[];
  /** RMS rows define pivot = mean = 0 too (for a body that stores them) */
  rmsZeros?: boolean;
}

/**
 * One workgroup (or subgroup) per normalised row, as the forward and the backward's row kernel both
 * run it: the bindings, each row's base into the operands, the row's statistics pivot, mean (of
 * x - pivot) and rstd computed as the forward does, then `body`.
 */
export function normRowKernel(p: Omit<NormParams, 'y'>, o: RowKernelOptions, body: (s: RowScope) => string[]): KernelSpec {
  const { what, operands, bindings } = o;
  const wg = rowWorkgroupSize(p, what);
  const shape = p.x.shape;
  const split = shape.length - p.normalizedAxes;
  const rows = numel(shape.slice(0, split));
  const n = numel(shape.slice(split));
  const strides = operands.map((o) => stridesOver(o.view, shape, `${what} ${o.name}`));
  const outer = coalesce(shape.slice(0, split), strides.map((s) => s.slice(0, split)));
  const inner = coalesce(shape.slice(split), strides.map((s) => s.slice(split)));
  const at = (name: string) => {
    const k = operands.findIndex((o) => o.name === name);
    return `b_${name}[base_${name} + ${wgslDot(0, inner.strides[k], 'c')}]`;
  };
  const loop = (lines: string[]) => [
    `for (var e: u32 = lid; e < ${n}u; e += ${wg}u) {`,
    ...[...wgslCoords(inner.shape, 'e', 'c'), ...lines].map((l) => `  ${l}`),
    '}',
  ];
  const rms = p.kind === 'rms';
  // Centring on the row's first element keeps x - pivot exact (Sterbenz) when |mean| >> std, so the
  // f32 rounding of a large mean does not leak into the centred values.
  const centred = rms ? at('x') : `((${at('x')} - pivot) - mean)`;
  const lanes = p.subgroupLanes !== undefined;
  const sum = (v: string) => (lanes ? `subgroupAdd(${v})` : `workgroup_sum(${v}, lid)`);
  const bases = operands.map((o, k) => `let base_${o.name} = ${wgslDot(o.view.offset, outer.strides[k], 'o')};`);
  const wgsl = [
    ...(lanes ? ['enable subgroups;'] : []),
    ...bindings.map((b, k) => `@group(0) @binding(${k}) var<storage, ${b.access}> b_${b.name}: array<f32>;`),
    lanes ? '' : workgroupSumWgsl(wg),
    '',
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let row = ${GRID_WORKGROUP};`,
    `  if (row >= ${rows}u) { return; }`,
    ...[...wgslCoords(outer.shape, 'row', 'o'), ...bases].map((l) => `  ${l}`),
    ...(rms ? (o.rmsZeros ? ['  let pivot = 0.0;', '  let mean = 0.0;'] : []) : [
      '  let pivot = b_x[base_x];',
      '  var sum = 0.0;',
      ...loop([`sum += ${at('x')} - pivot;`]).map((l) => `  ${l}`),
      `  let mean = ${sum('sum')} / ${f32Literal(n)}; // of x - pivot`,
    ]),
    '  var sq = 0.0;',
    ...loop([`let d = ${centred};`, 'sq += d * d;']).map((l) => `  ${l}`),
    `  let rstd = inverseSqrt(${sum('sq')} / ${f32Literal(n)} + ${f32Literal(p.eps)});`,
    ...body({ at, loop, sum, centred, n }).map((l) => `  ${l}`),
    '}',
    '',
  ].join('\n');
  return {
    key: `${o.family}:${JSON.stringify([p, wg])}`,
    wgsl,
    entryPoint: 'main',
    bindings,
    dispatch: gridFor(rows),
    ...(lanes ? { features: ['subgroups'] } : {}),
  };
}

export function normKernel(p: NormParams): KernelSpec {
  validate(p);
  const present = OPTIONAL.filter((k) => p[k] !== undefined);
  const operands: { name: string; view: View }[] = [
    { name: 'x', view: p.x }, ...present.map((k) => ({ name: k, view: p[k]! })), { name: 'y', view: p.y }];
  const bindings = operands.map((o) => ({ name: o.name, access: o.name === 'y' ? 'read_write' as const : 'read' as const }));
  return normRowKernel(p, { family: 'norm', what: 'norm', operands, bindings }, ({ at, loop, centred }) => {
    const write = [`var v = ${centred} * rstd;`];
    if (p.weight) write.push(`v = v * ${at('weight')};`);
    if (p.bias) write.push(`v = v + ${at('bias')};`);
    if (p.scale) write.push(`v = v * (1.0 + ${at('scale')}) + ${at('shift')};`);
    write.push(`${at('y')} = v;`);
    return loop(write);
  });
}

/** The subgroup variant on adapters with one fixed subgroup size (as chooseGemmTiling decides). */
export function normLanesFor(adapter: AdapterTraits | undefined): number | undefined {
  const sg = adapter?.info.subgroupMinSize;
  return adapter?.software && adapter.features.has('subgroups') && sg && sg === adapter.info.subgroupMaxSize ? sg : undefined;
}

/** Float64 reference; returns the y buffer (extent(y) elements, NaN where y does not reach). */
export function normReference(p: NormParams, data: { x: ArrayLike<number> } & Partial<Record<Optional, ArrayLike<number>>>): Float64Array {
  validate(p);
  const shape = p.x.shape;
  const split = shape.length - p.normalizedAxes;
  const n = numel(shape.slice(split));
  const rows = numel(shape.slice(0, split));
  const strides = Object.fromEntries((['x', 'y', ...OPTIONAL] as const).filter((k) => p[k]).map((k) => [k, stridesOver(p[k]!, shape, k)]));
  const y = new Float64Array(extent(p.y)).fill(NaN);
  const idx = new Array(shape.length).fill(0);
  const offsetOf = (k: 'x' | 'y' | Optional) => idx.reduce((o, c, a) => o + c * strides[k][a], p[k]!.offset);
  const forRow = (row: number, fn: () => void) => {
    for (let e = 0; e < n; e++) {
      let r = row * n + e;
      for (let a = shape.length - 1; a >= 0; a--) { idx[a] = r % shape[a]; r = Math.floor(r / shape[a]); }
      fn();
    }
  };
  const read = (k: Optional) => {
    const buf = data[k];
    if (!buf) throw new Error(`normReference: no data for '${k}'`);
    return buf[offsetOf(k)];
  };
  for (let row = 0; row < rows; row++) {
    let mean = 0;
    if (p.kind !== 'rms') { forRow(row, () => { mean += data.x[offsetOf('x')]; }); mean /= n; }
    let sq = 0;
    forRow(row, () => { sq += (data.x[offsetOf('x')] - mean) ** 2; });
    const rstd = 1 / Math.sqrt(sq / n + p.eps);
    forRow(row, () => {
      let v = (data.x[offsetOf('x')] - mean) * rstd;
      if (p.weight) v *= read('weight');
      if (p.bias) v += read('bias');
      if (p.scale) v = v * (1 + read('scale')) + read('shift');
      y[offsetOf('y')] = v;
    });
  }
  return y;
}
