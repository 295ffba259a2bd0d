// Backward of layer / group / RMS normalisation (norm.ts), forward y = (x̂ · weight + bias) · (1 + scale) + shift
// with x̂ = (x − mean) · rstd (RMS: mean = 0). Writing a = x̂ · weight + bias and g = dy · (1 + scale) · weight:
//   dx     = rstd · (g − mean(g) − x̂ · mean(g · x̂))   per row (RMS: without the mean(g) term)
//   dweight = Σ dy · (1 + scale) · x̂    dbias = Σ dy · (1 + scale)    dscale = Σ dy · a    dshift = Σ dy
// where each Σ runs over the axes on which that gradient's view has stride 0 (the axes its operand
// broadcasts over). Two kernels, no atomics, every output written once with `=`:
//  - the row kernel (one workgroup per row, like the forward) recomputes the statistics, writes dx
//    and saves (pivot, shifted mean, rstd) per row in a small stats buffer;
//  - the parameter kernel reduces each requested gradient over its stride-0 axes, reading x̂ through
//    the stats, so no row's statistics are computed twice.
// sumToView* covers the same "sum dy down to a broadcast operand" for binary ops, through reduce.ts.
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import { coalesce, contiguous, extent, lowest, numel, stridesOver, wgslCoords, wgslDot, type View } from './view.ts';
import { f32Literal } from './expr.ts';
import { reduceKernel, reduceReference, workgroupSumWgsl, type ReduceParams } from './reduce.ts';
import { checkNormParams, normRowKernel, type NormParams } from './norm.ts';

export interface NormBackwardParams extends Omit<NormParams, 'y'> {
  /** d loss / d y, over x's shape */
  dy: View;
  /** row kernel output: d loss / d x, over x's shape */
  dx?: View;
  /** [rows, 3] per row (pivot, mean of x − pivot, rstd); rows = numel of x's leading axes. Written by the
   *  row kernel, read by the parameter kernel (RMS rows hold (0, 0, rstd)). */
  stats?: View;
  /** parameter kernel outputs, views over x's shape: each sums over the axes where its stride is 0 */
  dweight?: View;
  dbias?: View;
  dscale?: View;
  dshift?: View;
  /** parameter kernel: one invocation ('thread') or one workgroup per output element; default
   *  'workgroup' from 256 summed elements on (per gradient) */
  strategy?: 'thread' | 'workgroup';
}

const GRADS = ['dweight', 'dbias', 'dscale', 'dshift'] as const;
type Grad = (typeof GRADS)[number];
const OPERAND_OF = { dweight: 'weight', dbias: 'bias', dscale: 'scale', dshift: 'shift' } as const;

function validate(p: NormBackwardParams) {
  checkNormParams(p, 'norm backward');
  const shape = p.x.shape;
  const rank = shape.length;
  for (const g of GRADS) if (p[g] && !p[OPERAND_OF[g]]) throw new Error(`norm backward: ${g} without a forward ${OPERAND_OF[g]}`);
  const split = rank - p.normalizedAxes;
  const rows = numel(shape.slice(0, split));
  if (p.stats && (p.stats.shape.length !== 2 || p.stats.shape[0] !== rows || p.stats.shape[1] !== 3)) {
    throw new Error(`norm backward: stats has shape [${p.stats.shape}], expected [${rows}, 3]`);
  }
  const views: [string, View | undefined][] = [['x', p.x], ['dy', p.dy], ['dx', p.dx], ['weight', p.weight], ['bias', p.bias],
    ['scale', p.scale], ['shift', p.shift], ...GRADS.map((g): [string, View | undefined] => [g, p[g]])];
  for (const [name, v] of views) {
    if (!v) continue;
    stridesOver(v, shape, `norm backward ${name}`);
    if (lowest(v) < 0) throw new Error(`norm backward: ${name} reaches below element 0`);
  }
  if (p.dx && stridesOver(p.dx, shape, 'dx').some((s, i) => s === 0 && shape[i] > 1)) throw new Error('norm backward: dx cannot broadcast');
  for (const name of ['dx', ...GRADS] as const) {
    const v = p[name];
    if (v) checkOneToOne(v, shape, `norm backward ${name}`);
  }
  return { shape, split, rows, n: numel(shape.slice(split)) };
}

/**
 * Throws unless the axes where `v` (over `shape`) has a non-zero stride address distinct elements:
 * then an output written with `=` once per kept index has exactly one writer per element.
 */
export function checkOneToOne(v: View, shape: readonly number[], what: string): void {
  const s = stridesOver(v, shape, what);
  const axes = shape.map((n, a) => ({ n, s: Math.abs(s[a]) })).filter((e) => e.n > 1 && e.s !== 0).sort((a, b) => a.s - b.s);
  let span = 1; // elements covered by the smaller axes
  for (const e of axes) {
    if (e.s < span) throw new Error(`${what}: the view addresses one element more than once (stride ${e.s})`);
    span = e.s * (e.n - 1) + span;
  }
}

// ---------------------------------------------------------------- row kernel: dx and stats

/**
 * One workgroup per row: statistics as the forward computes them (shifted two-pass), then
 * mean(g) and mean(g · x̂), then dx; the first invocation stores the row's stats.
 * Bindings: x, [weight, scale, dy when dx is requested], then dx?, stats?.
 */
export function normRowsBackwardKernel(p: NormBackwardParams): KernelSpec {
  validate(p);
  if (!p.dx && !p.stats) throw new Error('norm backward rows: nothing to write (give dx and/or stats)');
  const rms = p.kind === 'rms';
  const inputs: { name: string; view: View }[] = [{ name: 'x', view: p.x }];
  if (p.dx) {
    if (p.weight) inputs.push({ name: 'weight', view: p.weight });
    if (p.scale) inputs.push({ name: 'scale', view: p.scale });
    inputs.push({ name: 'dy', view: p.dy });
  }
  const full = p.dx ? [...inputs, { name: 'dx', view: p.dx }] : inputs;
  const names = [...full.map((o) => o.name), ...(p.stats ? ['stats'] : [])];
  const bindings = names.map((name) => ({ name, access: name === 'dx' || name === 'stats' ? 'read_write' as const : 'read' as const }));
  const st = p.stats;
  const statsAt = (k: number) => `b_stats[${st?.offset ?? 0}u + row * ${st?.strides[0] ?? 0}u + ${k * (st?.strides[1] ?? 0)}u]`;
  const kernel = { family: 'norm-backward-rows', what: 'norm backward', operands: full, bindings, rmsZeros: true };
  return normRowKernel(p, kernel, ({ at, loop, sum, centred, n }) => {
    const gradIn = () => [ // dy and the parameters are bound only when dx is written
      `let xh = ${centred} * rstd;`,
      `let g = ${[at('dy'), ...(p.scale ? [`(1.0 + ${at('scale')})`] : []), ...(p.weight ? [at('weight')] : [])].join(' * ')};`,
    ];
    return [
      ...(p.dx ? [
        'var sg = 0.0;',
        'var sgx = 0.0;',
        ...loop([...gradIn(), ...(rms ? [] : ['sg += g;']), 'sgx += g * xh;']),
        ...(rms ? [] : [`let mg = ${sum('sg')} / ${f32Literal(n)};`]),
        `let mgx = ${sum('sgx')} / ${f32Literal(n)};`,
        ...loop([...gradIn(), `${at('dx')} = rstd * (g${rms ? '' : ' - mg'} - xh * mgx);`]),
      ] : []),
      ...(st ? [`if (lid == 0u) { ${statsAt(0)} = pivot; ${statsAt(1)} = mean; ${statsAt(2)} = rstd; }`] : []),
    ];
  });
}

// ---------------------------------------------------------------- parameter kernel

/** The inputs each parameter gradient reads (besides dy). */
function inputsFor(p: NormBackwardParams, g: Grad): ('x' | 'stats' | 'weight' | 'bias' | 'scale')[] {
  switch (g) {
    case 'dweight': return ['x', 'stats', ...(p.scale ? ['scale' as const] : [])];
    case 'dbias': return p.scale ? ['scale'] : [];
    case 'dscale': return ['x', 'stats', ...(p.weight ? ['weight' as const] : []), ...(p.bias ? ['bias' as const] : [])];
    case 'dshift': return [];
  }
}

/**
 * Every requested parameter gradient in one dispatch: each is a segment of workgroups, where one
 * invocation (or one workgroup, with a tree sum) produces one element of the gradient view by
 * summing its per-element term over the view's stride-0 axes, in a fixed order.
 * Bindings: x?, stats?, dy, weight?, bias?, scale? (only those the requested gradients read, in this
 * order; x and stats come together), then dweight?, dbias?, dscale?, dshift? (those requested).
 * Two requested gradients must not share one buffer (WebGPU forbids aliased writable bindings):
 * request them from separate kernels then.
 */
export function normParamsBackwardKernel(p: NormBackwardParams): KernelSpec {
  const { shape, split } = validate(p);
  const wg = p.workgroupSize ?? 64;
  if (!Number.isInteger(Math.log2(wg))) throw new Error(`norm backward: workgroupSize must be a power of two (got ${wg})`);
  if (p.subgroupLanes !== undefined) throw new Error('norm backward: subgroupLanes applies to the row kernel only');
  const grads = GRADS.filter((g) => p[g]);
  if (grads.length === 0) throw new Error('norm backward params: no gradient requested');
  const used = new Set(grads.flatMap((g) => inputsFor(p, g)));
  if (used.has('stats') && !p.stats) throw new Error('norm backward params: dweight and dscale read the row stats (give stats)');
  const rank = shape.length;
  // stats seen over x's shape: row-major over the leading axes, constant along the normalised ones
  const statsView = (): View => {
    const rowStrides = contiguous(shape.slice(0, split)).strides.map((s) => s * p.stats!.strides[0]);
    return { shape, strides: [...rowStrides, ...Array(rank - split).fill(0)], offset: p.stats!.offset };
  };
  const inputs = (['x', 'stats', 'dy', 'weight', 'bias', 'scale'] as const)
    .filter((k) => k === 'dy' || used.has(k))
    .map((k) => ({ name: k, view: k === 'stats' ? statsView() : p[k]! }));
  const inStrides = inputs.map((o) => stridesOver(o.view, shape, `norm backward ${o.name}`));
  const strategyFor = (count: number) => p.strategy ?? (count >= 256 ? 'workgroup' : 'thread');

  let first = 0;
  const segments = grads.map((g, gi) => {
    const gs = stridesOver(p[g]!, shape, g);
    const axes = [...Array(rank).keys()];
    const kept = axes.filter((a) => gs[a] !== 0 || shape[a] === 1);
    const summed = axes.filter((a) => !kept.includes(a));
    const outer = coalesce(kept.map((a) => shape[a]), [...inStrides, gs].map((s) => kept.map((a) => s[a])));
    const inner = coalesce(summed.map((a) => shape[a]), inStrides.map((s) => summed.map((a) => s[a])));
    const outputs = numel(outer.shape);
    const count = numel(inner.shape);
    const strategy = strategyFor(count);
    const workgroups = strategy === 'workgroup' ? outputs : Math.ceil(outputs / wg);
    const at = (name: string) => {
      const k = inputs.findIndex((o) => o.name === name);
      return `b_${name}[base_${name} + ${wgslDot(0, inner.strides[k], 'c')}]`;
    };
    const stat = (k: number) => `b_stats[base_stats + ${wgslDot(0, inner.strides[inputs.findIndex((o) => o.name === 'stats')], 'c')}${k ? ` + ${k * p.stats!.strides[1]}u` : ''}]`;
    // built per gradient: only the inputs that gradient binds may be named
    const xh = () => (p.kind === 'rms' ? `${at('x')} * ${stat(2)}` : `((${at('x')} - ${stat(0)}) - ${stat(1)}) * ${stat(2)}`);
    const mod = () => (p.scale ? [`(1.0 + ${at('scale')})`] : []);
    const term = {
      dweight: () => [at('dy'), ...mod(), `(${xh()})`].join(' * '),
      dbias: () => [at('dy'), ...mod()].join(' * '),
      dscale: () => `${at('dy')} * (${[`(${xh()})`, ...(p.weight ? [at('weight')] : [])].join(' * ')}${p.bias ? ` + ${at('bias')}` : ''})`,
      dshift: () => at('dy'),
    }[g]();
    const thread = strategy === 'thread';
    const lo = first;
    first += workgroups;
    const body = [
      `let out = ${thread ? `(w - ${lo}u) * ${wg}u + lid` : `w - ${lo}u`};`,
      ...(thread ? [`if (out < ${outputs}u) {`] : ['{']),
      ...[
        ...wgslCoords(outer.shape, 'out', 'o'),
        ...inputs.flatMap((o, k) => (term.includes(`b_${o.name}[`) ? [`let base_${o.name} = ${wgslDot(o.view.offset, outer.strides[k], 'o')};`] : [])),
        'var acc = 0.0;',
        `for (var e: u32 = ${thread ? '0u' : 'lid'}; e < ${count}u; e += ${thread ? 1 : wg}u) {`,
        ...wgslCoords(inner.shape, 'e', 'c').map((l) => `  ${l}`),
        `  acc += ${term};`,
        '}',
        ...(thread ? [] : ['acc = workgroup_sum(acc, lid);']),
        `${thread ? '' : 'if (lid == 0u) { '}b_${g}[${wgslDot(p[g]!.offset, outer.strides[inputs.length], 'o')}] = acc;${thread ? '' : ' }'}`,
      ].map((l) => `  ${l}`),
      '}',
    ];
    // The segment bound depends on the workgroup index only: uniform, so workgroup_sum may sit inside.
    return { strategy, lines: [`${gi === 0 ? '' : '} else '}if (w < ${first}u) {`, ...body.map((l) => `  ${l}`)] };
  });
  const names = [...inputs.map((o) => o.name), ...grads];
  const wgsl = [
    ...names.map((name, k) => `@group(0) @binding(${k}) var<storage, ${k < inputs.length ? 'read' : 'read_write'}> b_${name}: array<f32>;`),
    segments.some((s) => s.strategy === 'workgroup') ? workgroupSumWgsl(wg) : '',
    '',
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let w = ${GRID_WORKGROUP};`,
    ...segments.flatMap((s) => s.lines).map((l) => `  ${l}`),
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    key: `norm-backward-params:${JSON.stringify([p, wg, segments.map((s) => s.strategy)])}`,
    wgsl,
    entryPoint: 'main',
    bindings: names.map((name, k) => ({ name, access: k < inputs.length ? 'read' as const : 'read_write' as const })),
    dispatch: gridFor(first),
  };
}

// ---------------------------------------------------------------- float64 references

type Data = { x: ArrayLike<number>; dy: ArrayLike<number> } & Partial<Record<'weight' | 'bias' | 'scale', ArrayLike<number>>>;
export type NormBackwardOutputs = { stats: Float64Array } & Partial<Record<'dx' | Grad, Float64Array>>;

/**
 * Float64 reference of every output the params request (buffers of extent(view) elements, NaN
 * where the view does not reach); `stats` as the row kernel stores them ([rows, 3] contiguous when
 * p.stats is absent). Gradient views that share one buffer element add up there.
 */
export function normBackwardReference(p: NormBackwardParams, data: Data): NormBackwardOutputs {
  const { shape, rows, n } = validate(p);
  const sv = p.stats ?? contiguous([rows, 3]);
  const view = (k: 'x' | 'dy' | 'dx' | 'weight' | 'bias' | 'scale' | Grad) => ({ v: p[k]!, s: stridesOver(p[k]!, shape, k) });
  const out: NormBackwardOutputs = { stats: new Float64Array(extent(sv)).fill(NaN) };
  // every element an output view reaches starts at 0 and accumulates its terms
  for (const k of (['dx', ...GRADS] as const).filter((g) => p[g])) {
    const buf = out[k] = new Float64Array(extent(p[k]!)).fill(NaN);
    const { v, s } = view(k);
    forRowElements(shape, 0, numel(shape), (idx) => { buf[offsetOf(v, s, idx)] = 0; });
  }
  const get = (k: 'x' | 'dy' | 'weight' | 'bias' | 'scale', idx: number[]) => {
    const buf = data[k];
    if (!buf) throw new Error(`normBackwardReference: no data for '${k}'`);
    const { v, s } = view(k);
    return buf[offsetOf(v, s, idx)];
  };
  const add = (k: 'dx' | Grad, idx: number[], value: number) => {
    if (!p[k]) return;
    const { v, s } = view(k);
    out[k]![offsetOf(v, s, idx)] += value;
  };
  const xh = new Float64Array(n);
  const g = new Float64Array(n);
  for (let row = 0; row < rows; row++) {
    let mean = 0;
    if (p.kind !== 'rms') {
      forRowElements(shape, row * n, n, (idx) => { mean += get('x', idx); });
      mean /= n;
    }
    let sq = 0;
    forRowElements(shape, row * n, n, (idx) => { sq += (get('x', idx) - mean) ** 2; });
    const rstd = 1 / Math.sqrt(sq / n + p.eps);
    let mg = 0, mgx = 0, e = 0;
    forRowElements(shape, row * n, n, (idx) => {
      xh[e] = (get('x', idx) - mean) * rstd;
      const dy = get('dy', idx);
      const w = p.weight ? get('weight', idx) : 1;
      const m = p.scale ? 1 + get('scale', idx) : 1;
      g[e] = dy * m * w;
      mg += g[e];
      mgx += g[e] * xh[e];
      add('dweight', idx, dy * m * xh[e]);
      add('dbias', idx, dy * m);
      add('dscale', idx, dy * (xh[e] * w + (p.bias ? get('bias', idx) : 0)));
      add('dshift', idx, dy);
      e++;
    });
    mg = p.kind === 'rms' ? 0 : mg / n;
    mgx /= n;
    e = 0;
    forRowElements(shape, row * n, n, (idx) => { add('dx', idx, rstd * (g[e] - mg - xh[e] * mgx)); e++; });
    const pivot = p.kind === 'rms' ? 0 : get('x', indexOf(shape, row * n)); // the row's first element, as the kernel
    const base = sv.offset + row * sv.strides[0];
    out.stats[base] = pivot;
    out.stats[base + sv.strides[1]] = mean - pivot;
    out.stats[base + 2 * sv.strides[1]] = rstd;
  }
  return out;
}

const offsetOf = (v: View, s: readonly number[], idx: readonly number[]) => idx.reduce((o, c, a) => o + c * s[a], v.offset);

function indexOf(shape: readonly number[], flat: number): number[] {
  const idx = new Array(shape.length).fill(0);
  for (let a = shape.length - 1; a >= 0; a--) { idx[a] = flat % shape[a]; flat = Math.floor(flat / shape[a]); }
  return idx;
}

/** f(idx) for the row-major flat indices [start, start + count) of `shape`. */
function forRowElements(shape: readonly number[], start: number, count: number, f: (idx: number[]) => void) {
  for (let flat = start; flat < start + count; flat++) f(indexOf(shape, flat));
}

// ---------------------------------------------------------------- sum to a broadcast view

/**
 * The gradient of an operand read through `target` (a view over dy's shape, stride 0 or size 1 where
 * it broadcasts) from the gradient `dy` of the full result: dy summed over those axes, written to the
 * target's non-broadcast axes. reduce.ts expresses it as a sum over the broadcast axes.
 */
export function sumToViewParams(dy: View, target: View, opts: Pick<ReduceParams, 'strategy' | 'workgroupSize'> = {}): ReduceParams {
  const s = stridesOver(target, dy.shape, 'sum to view target');
  checkOneToOne(target, dy.shape, 'sum to view target');
  const axes = dy.shape.flatMap((n, a) => (s[a] === 0 && n > 1 ? [a] : []));
  const kept = dy.shape.flatMap((_, a) => (axes.includes(a) ? [] : [a]));
  const y: View = { shape: kept.map((a) => dy.shape[a]), strides: kept.map((a) => s[a]), offset: target.offset };
  return { op: 'sum', x: dy, axes, y, ...opts };
}

/** Bindings: dy, then the target's buffer (read_write). */
export const sumToViewKernel = (dy: View, target: View, opts: Pick<ReduceParams, 'strategy' | 'workgroupSize'> = {}): KernelSpec =>
  reduceKernel(sumToViewParams(dy, target, opts));

export const sumToViewReference = (dy: View, target: View, dyData: ArrayLike<number>): Float64Array =>
  reduceReference(sumToViewParams(dy, target), dyData);
