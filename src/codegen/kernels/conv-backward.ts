/**
 * Backward of the convolution (conv.ts), each kernel described by the forward problem's own views:
 * `x` [B, Cin, T, H, W], `weight` [Cout, Cin / groups, KT, KH, KW], `out` [B, Cout, To, Ho, Wo], and
 * the forward's stride, padding, dilation and groups. Which of them is read and which written depends
 * on the kernel. All sums run in a fixed order: deterministic, no atomics.
 *
 *  - convBackwardDataKernel: dx (at `x`) from dy (at `out`) and the weight. One invocation per dx
 *    element gathers the (output, tap) pairs that read it: any stride. Bindings: dy, weight, dx.
 *  - convFlipWeightKernel + convTransposedPhases: for stride 1 the data gradient is itself a
 *    convolution of dy with the weight flipped and transposed per group ([Cin, Cout / groups, taps
 *    reversed]) and padding d (K - 1) - p, so the forward kernel (conv.ts, with its tilings) runs it;
 *    a stride s splits dx into s phases per axis, each such a convolution with a sub-kernel. The
 *    flip is a weight-sized copy because views cannot reverse an axis (strides are >= 0 there).
 *  - convBackwardWeightKernel: dweight (at `weight`) from x and dy; one workgroup per tile of output
 *    channels x taps (chooseConvWeightTiling) sums dy · x over the batch and the output positions
 *    (zero where a tap lands in the padding), lanes over positions, then lane by lane in order.
 *    Bindings: x, dy, dweight.
 * The bias gradient is a plain reduction of dy (reduce.ts).
 */
import { flatKernel, type KernelSpec } from './kernel.ts';
import { planConv, type ConvParams, type ConvPlan, type Triple } from './conv-plan.ts';
import { extent, forEachIndex, type View } from './view.ts';

/** The forward problem a backward kernel is described by (bias and epilogue do not matter here). */
export type ConvBackwardParams = Pick<ConvParams, 'x' | 'weight' | 'out' | 'stride' | 'padding' | 'dilation' | 'groups'> & {
  workgroupSize?: number;
};

const u = (n: number) => `${n}u`;
const i = (n: number) => `${n}i`;

export function writable(v: View, what: string): void {
  if (v.shape.some((n, a) => n > 1 && v.strides[a] === 0)) throw new Error(`conv backward: ${what} must not broadcast (stride 0 over an axis longer than 1)`);
}

function workgroupSizeOf(p: { workgroupSize?: number }): number {
  const wg = p.workgroupSize ?? 64;
  if (!Number.isInteger(wg) || wg < 1 || wg > 256) {
    throw new Error(`conv backward: workgroupSize must be an integer between 1 and 256 (got ${wg})`);
  }
  return wg;
}

export const plan = (p: ConvBackwardParams): ConvPlan => planConv({ x: p.x, weight: p.weight, out: p.out, stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups });
export const keyOf = (g: ConvPlan) => JSON.stringify([g.groups, g.stride, g.dilation, g.padBefore, g.x, g.weight, g.out]);
/** WGSL terms coordinate * stride (zero strides skipped). */
export const terms = (strides: readonly number[], coords: readonly string[]) =>
  coords.flatMap((c, a) => (strides[a] === 0 ? [] : [strides[a] === 1 ? c : `${c} * ${u(strides[a])}`]));
/** WGSL: the view's offset plus its terms. */
const address = (v: View, coords: readonly string[]) => [u(v.offset), ...terms(v.strides, coords)].join(' + ');
/** WGSL `let` lines decomposing `flat` into `names` over `shape` (outermost first), through `var ${rem}`. */
export const coordsOf = (shape: readonly number[], flat: string, names: readonly string[], rem = 'r') => {
  const lines = [`var ${rem} = ${flat};`];
  for (let a = shape.length - 1; a > 0; a--) lines.push(`let ${names[a]} = ${rem} % ${u(shape[a])}; ${rem} = ${rem} / ${u(shape[a])};`);
  lines.push(`let ${names[0]} = ${rem};`);
  return lines;
};
/** WGSL: `e * stride`, or `e` for stride 1. */
export const times = (e: string, stride: number) => (stride === 1 ? e : `${e} * ${u(stride)}`);
/** WGSL: ` + n` / ` - n` for an i32 constant (nothing for 0). */
const plusI = (n: number) => (n > 0 ? ` + ${i(n)}` : n < 0 ? ` - ${i(-n)}` : '');

// ---------------------------------------------------------------- data gradient, any stride

/** dx[b, c, i] = sum over the taps k and output positions o with o * s + k * d - p = i of weight · dy. */
export function convBackwardDataKernel(p: ConvBackwardParams): KernelSpec {
  const g = plan(p);
  writable(g.x, 'dx');
  const wg = workgroupSizeOf(p);
  const [xs, ws, ys] = [g.x.strides, g.weight.strides, g.out.strides];
  const S = ['t', 'h', 'w'];
  const body = [
    ...coordsOf(g.x.shape, 'flat', ['b', 'c', 'it', 'ih', 'iw']),
    `let gi = c / ${u(g.cinG)};`,
    `let ci = c % ${u(g.cinG)};`,
    `let dyBase = ${u(g.out.offset)} + b * ${u(ys[0])} + gi * ${u(g.coutG * ys[1])};`,
    `let wBase = ${u(g.weight.offset)} + gi * ${u(g.coutG * ws[0])} + ci * ${u(ws[1])};`,
    'var acc = 0.0;',
  ];
  // Per axis, tap k reads output (i + p - k d) / s, which must be whole and inside dy: k runs over
  // [lo, hi) with k d <= i + p and k d >= i + p - (O - 1) s, from the first whole one in steps.
  // Bounds that depend on the element also keep the loops loops (constant ones unroll, and on a
  // software adapter a fully unrolled nest compiles for seconds).
  const loops: string[] = [];
  let depth = '';
  for (let a = 0; a < 3; a++) {
    const [K, st, d, pb, O] = [g.kernel[a], g.stride[a], g.dilation[a], g.padBefore[a], g.outSize[a]];
    const ax = S[a];
    if (K === 1 && st === 1 && pb === 0) { body.push(`let k${ax} = 0u;`, `let o${ax} = i${ax};`); continue; }
    body.push(`let m${ax} = i32(i${ax}) + ${i(pb)};`);
    body.push(`let far${ax} = m${ax} - ${i((O - 1) * st)};`);
    body.push(`let lo${ax} = select(0u, u32(${d > 1 ? `(far${ax} + ${i(d - 1)}) / ${i(d)}` : `far${ax}`}), far${ax} > 0i);`);
    body.push(`let hi${ax} = select(0u, min(u32(m${ax})${d > 1 ? ` / ${u(d)}` : ''} + 1u, ${u(K)}), m${ax} >= 0i);`);
    if (st > 1) {
      // the first tap between strides, then every s / gcd(s, d)-th
      body.push(`var f${ax} = lo${ax};`, `while (f${ax} < hi${ax} && (u32(m${ax}) - f${ax} * ${u(d)}) % ${u(st)} != 0u) { f${ax}++; }`);
    }
    const step = st / gcd(st, d);
    loops.push(`${depth}for (var k${ax} = ${st > 1 ? 'f' : 'lo'}${ax}; k${ax} < hi${ax}; k${ax}${step > 1 ? ` += ${u(step)}` : '++'}) {`);
    depth += '  ';
    const n = `u32(m${ax}) - ${times(`k${ax}`, d)}`;
    loops.push(`${depth}let o${ax} = ${st > 1 ? `(${n}) / ${u(st)}` : n};`);
  }
  body.push(...loops);
  body.push(`${depth}let yAt = ${['dyBase', ...terms(ys.slice(2), ['ot', 'oh', 'ow'])].join(' + ')};`);
  body.push(`${depth}let wAt = ${['wBase', ...terms(ws.slice(2), ['kt', 'kh', 'kw'])].join(' + ')};`);
  body.push(`${depth}for (var j = 0u; j < ${u(g.coutG)}; j++) {`);
  body.push(`${depth}  acc += weight_buf[wAt + j * ${u(ws[0])}] * dy_buf[yAt + j * ${u(ys[1])}];`);
  body.push(`${depth}}`);
  while (depth) { depth = depth.slice(2); body.push(`${depth}}`); }
  body.push(`dx_buf[${address(g.x, ['b', 'c', 'it', 'ih', 'iw'])}] = acc;`);
  const decls = [
    '@group(0) @binding(0) var<storage, read> dy_buf: array<f32>;',
    '@group(0) @binding(1) var<storage, read> weight_buf: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> dx_buf: array<f32>;',
  ];
  return flatKernel({
    key: `conv-backward-data:${keyOf(g)}:${wg}`, decls, wg, total: g.x.shape.reduce((s, n) => s * n, 1), body,
    bindings: [{ name: 'dy', access: 'read' }, { name: 'weight', access: 'read' }, { name: 'dx', access: 'read_write' }],
  });
}

/** Float64 reference: the dx buffer (extent(x) elements; every element of the view written, NaN elsewhere). */
export const convBackwardDataReference = (p: ConvBackwardParams, dy: ArrayLike<number>, weight: ArrayLike<number>): Float64Array =>
  gradientReference(plan(p), 'x', weight, dy);

// ---------------------------------------------------------------- data gradient, stride 1, by the forward kernel

export interface ConvFlipParams {
  /** [Cout, Cin / groups, KT, KH, KW], read */
  weight: View;
  /** [Cin, Cout / groups, KT, KH, KW], written: flipped[g cinG + ci, j, k] = weight[g coutG + j, ci, K - 1 - k] */
  flipped: View;
  groups?: number;
  workgroupSize?: number;
}

function checkFlip(p: ConvFlipParams): { Cin: number; cinG: number; coutG: number; groups: number } {
  const groups = p.groups ?? 1;
  if (p.weight.shape.length !== 5 || p.flipped.shape.length !== 5) throw new Error('conv flip: weight and flipped must have rank 5');
  const [Cout, cinG, ...k] = p.weight.shape;
  if (!Number.isInteger(groups) || groups < 1 || Cout % groups) throw new Error(`conv flip: groups (${groups}) must divide Cout (${Cout})`);
  const want = [cinG * groups, Cout / groups, ...k];
  if (p.flipped.shape.some((n, a) => n !== want[a])) throw new Error(`conv flip: flipped must have shape [${want}], got [${p.flipped.shape}]`);
  writable(p.flipped, 'flipped');
  return { Cin: cinG * groups, cinG, coutG: Cout / groups, groups };
}

/** One invocation per flipped element. Bindings: weight, flipped. */
export function convFlipWeightKernel(p: ConvFlipParams): KernelSpec {
  const { cinG, coutG } = checkFlip(p);
  const wg = workgroupSizeOf(p);
  const [, , KT, KH, KW] = p.weight.shape;
  const body = [
    ...coordsOf(p.flipped.shape, 'flat', ['c', 'j', 'kt', 'kh', 'kw']),
    `let co = (c / ${u(cinG)}) * ${u(coutG)} + j;`,
    `let ci = c % ${u(cinG)};`,
    `flipped_buf[${address(p.flipped, ['c', 'j', 'kt', 'kh', 'kw'])}] = ` +
      `weight_buf[${address(p.weight, ['co', 'ci', `(${u(KT - 1)} - kt)`, `(${u(KH - 1)} - kh)`, `(${u(KW - 1)} - kw)`])}];`,
  ];
  const decls = [
    '@group(0) @binding(0) var<storage, read> weight_buf: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> flipped_buf: array<f32>;',
  ];
  return flatKernel({
    key: `conv-flip-weight:${JSON.stringify([p.weight, p.flipped, p.groups ?? 1, wg])}`, decls, wg, total: p.flipped.shape.reduce((s, n) => s * n, 1),
    body, bindings: [{ name: 'weight', access: 'read' }, { name: 'flipped', access: 'read_write' }],
  });
}

/** Float64 reference of convFlipWeightKernel: the flipped buffer (extent(flipped) elements, NaN where not written). */
export function convFlipWeightReference(p: ConvFlipParams, weight: ArrayLike<number>): Float64Array {
  const { cinG, coutG } = checkFlip(p);
  const K = p.weight.shape.slice(2);
  const out = new Float64Array(extent(p.flipped)).fill(NaN);
  forEachIndex(p.flipped.shape, ([c, j, ...k]) => {
    out[offsetOf(p.flipped, [c, j, ...k])] = weight[offsetOf(p.weight, [Math.floor(c / cinG) * coutG + j, c % cinG, ...k.map((q, a) => K[a] - 1 - q)])];
  });
  return out;
}

/**
 * The forward convolution that computes dx for stride 1: x = dy (at p.out), weight = `flipped`
 * ([Cin, Cout / groups, KT, KH, KW], see convFlipWeightKernel), out = dx (at p.x), padding before
 * d (K - 1) - p and after d (K - 1) - p' (p' the forward's effective padding after; where that is
 * negative, dy's range is cut instead). Null where the forward has a stride (convTransposedPhases).
 */
export function convTransposedParams(p: ConvBackwardParams, flipped: View): ConvParams | null {
  if (plan(p).stride.some((s) => s !== 1)) return null;
  return convTransposedPhases(p, flipped)?.[0] ?? null;
}

/** One axis of one phase of convTransposedPhases: which dx positions, which dy range, which taps. */
interface PhaseAxis { r: number; step: number; M: number; start: number; L: number; pad: [number, number]; J: number; wOff: number; dil: number }

/**
 * The data gradient of a strided convolution as stride-1 forward convolutions, one per phase: along
 * an axis of stride s, the dx positions s m + r (phase r) receive dy only through the taps k = k0 +
 * j s with k0 = (r + p) mod s, so dx at that phase is a stride-1 convolution of dy with that
 * sub-kernel reversed (a strided view of `flipped`, see convFlipWeightKernel), written to a strided
 * view of dx. The phases partition dx, so each element is written once. Stride-1 axes keep the whole
 * flipped kernel with its dilation (convTransposedParams). Null where some phase receives nothing (a
 * kernel shorter than its stride) or is empty, or an axis has both a stride and a dilation.
 */
export function convTransposedPhases(p: ConvBackwardParams, flipped: View): ConvParams[] | null {
  const g = plan(p);
  const axes: PhaseAxis[][] = [];
  for (let a = 0; a < 3; a++) {
    const [s, d, K, pb, n, O] = [g.stride[a], g.dilation[a], g.kernel[a], g.padBefore[a], g.size[a], g.outSize[a]];
    if (s > 1 && d !== 1) return null;
    const phases: PhaseAxis[] = [];
    for (let r = 0; r < s; r++) {
      const M = Math.ceil((n - r) / s);
      const k0 = s === 1 ? 0 : (((r + pb) % s) + s) % s;
      if (M < 1 || k0 >= K) return null;
      const J = s === 1 ? K : Math.floor((K - 1 - k0) / s) + 1;
      // output m, tap j (of the reversed sub-kernel) reads dy at m + dil j - before
      const dil = s === 1 ? d : 1;
      let before = s === 1 ? d * (K - 1) - pb : J - 1 - (r + pb - k0) / s;
      let after = (M - 1) + dil * (J - 1) - before - (O - 1);
      // negative padding: the dy range is cut instead
      const start = Math.max(0, -before);
      before += start;
      const L = O - start + Math.min(0, after);
      after = Math.max(0, after);
      if (L < 1) return null;
      phases.push({ r, step: s, M, start, L, pad: [before, after], J, wOff: K - 1 - k0 - (J - 1) * s, dil });
    }
    axes.push(phases);
  }
  const out: ConvParams[] = [];
  forEachIndex(axes.map((ph) => ph.length), (idx) => {
    const ph = idx.map((q, a) => axes[a][q]);
    const sub = (v: View, pick: (x: PhaseAxis) => [number, number, number]): View => {
      const shape = [...v.shape], strides = [...v.strides];
      let offset = v.offset;
      ph.forEach((x, a) => {
        const [first, step, size] = pick(x);
        offset += first * v.strides[a + 2];
        strides[a + 2] = step * v.strides[a + 2];
        shape[a + 2] = size;
      });
      return { shape, strides, offset };
    };
    out.push({
      x: sub(g.out, (x) => [x.start, 1, x.L]),
      weight: sub(flipped, (x) => [x.wOff, x.step, x.J]),
      out: sub(g.x, (x) => [x.r, x.step, x.M]),
      stride: 1, dilation: ph.map((x) => x.dil) as Triple, padding: ph.map((x) => x.pad), groups: g.groups,
    });
  });
  return out;
}

/** The view convFlipWeightKernel writes when `flipped` is a contiguous buffer of its own. */
export function flippedShape(p: Pick<ConvBackwardParams, 'weight' | 'groups'>): number[] {
  const [Cout, cinG, ...k] = p.weight.shape;
  const groups = p.groups ?? 1;
  return [cinG * groups, Cout / groups, ...k];
}

// ---------------------------------------------------------------- weight gradient

/** Which weight elements one workgroup of the weight gradient sums: `rows` output channels of a group times a chunk of `taps`. */
export interface ConvWeightTiling { rows: number; taps: number }

/**
 * The tiling with the fewest loads per term within `sums` running sums per lane (more spill on a
 * software adapter): per position a lane loads rows dy and taps x values, plus about 4 loads' worth
 * of index arithmetic, for rows · taps terms; rows past a group's end are wasted work. Chunks are
 * whole trailing kernel axes. (Measured on lavapipe for 32 channels, 3x3x3: 3 rows x 9 taps about
 * 1.5x faster than 1 x 27 and 10 x 3.)
 */
export function chooseConvWeightTiling(p: Pick<ConvBackwardParams, 'weight' | 'groups'>, sums = 32): ConvWeightTiling {
  const [Cout, , ...k] = p.weight.shape;
  const coutG = Cout / (p.groups ?? 1);
  const cost = ({ rows, taps }: ConvWeightTiling) => ((rows + taps + 4) / (rows * taps)) * ((Math.ceil(coutG / rows) * rows) / coutG);
  let best: ConvWeightTiling | undefined;
  for (let split = 0; split <= 3; split++) {
    const taps = k.slice(split).reduce((a, b) => a * b, 1);
    for (let rows = 1; rows <= Math.min(coutG, Math.floor(sums / taps)); rows++) {
      if (!best || cost({ rows, taps }) < cost(best)) best = { rows, taps };
    }
  }
  return best!;
}

/**
 * dweight[co, ci, k] = sum over b and the output positions o of dy[b, co, o] x[b, g cinG + ci,
 * o s + k d - p] (zero in the padding). One workgroup per `rows` output channels of a group, one
 * input channel and a chunk of taps (whole trailing kernel axes; see chooseConvWeightTiling): each
 * lane walks a share of the positions, loads each dy row and each tap's x once per position, and
 * keeps rows · taps running sums; then lane e sums element e over the lanes, in lane order.
 */
export function convBackwardWeightKernel(p: ConvBackwardParams & { tiling?: ConvWeightTiling }): KernelSpec {
  const g = plan(p);
  writable(g.weight, 'dweight');
  const wg = workgroupSizeOf(p);
  const tiling = p.tiling ?? chooseConvWeightTiling(p);
  const S = ['t', 'h', 'w'];
  // kernel axes before `split` index the chunk, the others are unrolled within it
  const split = [0, 1, 2, 3].find((a) => g.kernel.slice(a).reduce((x, y) => x * y, 1) === tiling.taps);
  const R = tiling.rows;
  if (split === undefined || !Number.isInteger(R) || R < 1 || R > g.coutG || wg * R * tiling.taps > 4096) {
    throw new Error(`conv backward: weight tiling ${JSON.stringify(tiling)} needs taps = a product of trailing kernel sizes [${g.kernel}], ` +
      `1 <= rows <= Cout / groups (${g.coutG}) and workgroupSize * rows * taps <= 4096`);
  }
  const outer = g.kernel.slice(0, split);
  const chunks = outer.reduce((a, b) => a * b, 1);
  const taps = tiling.taps;
  const blocks = Math.ceil(g.coutG / R);
  const [xs, ys, wst] = [g.x.strides, g.out.strides, g.weight.strides];
  const body = [
    ...coordsOf([g.groups * blocks, g.cinG, chunks], 'flat', ['cb', 'ci', 'q']),
    ...(split > 0 ? coordsOf(outer, 'q', S.slice(0, split).map((ax) => `k${ax}`), 'rq') : []),
    `let gi = cb / ${u(blocks)};`,
    `let j0 = (cb % ${u(blocks)}) * ${u(R)};`,
    `let xBase = ${u(g.x.offset)} + ${times(`(gi * ${u(g.cinG)} + ci)`, xs[1])};`,
    // rows past the group's end read its last channel and are not written
    ...Array.from({ length: R }, (_, r) => `let yBase${r} = ${u(g.out.offset)} + ${times(`(gi * ${u(g.coutG)} + min(j0 + ${u(r)}, ${u(g.coutG - 1)}))`, ys[1])};`),
    ...Array.from({ length: R * taps }, (_, e) => `var acc${e} = 0.0;`),
    `for (var pos = lid; pos < ${u(g.B * g.outSize[0] * g.outSize[1] * g.outSize[2])}; pos += ${u(wg)}) {`,
    ...coordsOf([g.B, ...g.outSize], 'pos', ['b', 'ot', 'oh', 'ow'], 'rp').map((l) => `  ${l}`),
    `  let yAt = ${terms([ys[0], ...ys.slice(2)], ['b', 'ot', 'oh', 'ow']).join(' + ') || '0u'};`,
    ...Array.from({ length: R }, (_, r) => `  let dy${r} = dy_buf[yBase${r} + yAt];`),
    `  let xb = xBase + ${times('b', xs[0])};`,
  ];
  const { loads, tapTerms } = tapLoads(g, split, body);
  loads.forEach((load, e) => {
    body.push(`  let x${e} = ${load};`);
    for (let r = 0; r < R; r++) body.push(`  acc${r * taps + e} = fma(dy${r}, x${e}, acc${r * taps + e});`);
  });
  body.push('}');
  // Lane e sums element e over the lanes in order: one barrier and no tree loop (a software
  // adapter compiles barriers inside unrolled loops for seconds).
  const E = R * taps;
  body.push(...Array.from({ length: E }, (_, e) => `red[lid * ${u(E)} + ${u(e)}] = acc${e};`), 'workgroupBarrier();');
  const chunkTerms = S.slice(0, split).map((ax, a) => times(`k${ax}`, wst[a + 2]));
  body.push(`if (lid < ${u(E)} && j0 + lid / ${u(taps)} < ${u(g.coutG)}) {`,
    `  var offsets = array<u32, ${taps}>(${tapTerms.map(u).join(', ')});`,
    '  var total = 0.0;',
    `  for (var l = 0u; l < ${u(wg)}; l++) { total += red[l * ${u(E)} + lid]; }`,
    `  let co = gi * ${u(g.coutG)} + j0 + lid / ${u(taps)};`,
    `  dweight_buf[${[u(g.weight.offset), times('co', wst[0]), times('ci', wst[1]), ...chunkTerms, `offsets[lid % ${u(taps)}]`].join(' + ')}] = total;`,
    '}');
  const decls = [
    '@group(0) @binding(0) var<storage, read> x_buf: array<f32>;',
    '@group(0) @binding(1) var<storage, read> dy_buf: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> dweight_buf: array<f32>;',
    `var<workgroup> red: array<f32, ${wg * E}>;`,
  ];
  return flatKernel({
    key: `conv-backward-weight:${keyOf(g)}:${wg}:${R}x${taps}`, decls, wg, total: g.groups * blocks * g.cinG * chunks, body, perWorkgroup: true,
    bindings: [{ name: 'x', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dweight', access: 'read_write' }],
  });
}

/**
 * The x value each tap of a chunk reads at the current output position (o<ax> in scope, `xb` the
 * channel's base address; kernel axes before `split` come from k<ax>): per axis and tap the input
 * position, whether it lies inside x (known statically where it always does) and its clamped
 * address. Pushes the position lines to `body`; returns one WGSL expression per tap (zero in the
 * padding) and each tap's offset in the weight.
 */
export function tapLoads(g: ConvPlan, split: number, body: string[]): { loads: string[]; tapTerms: number[] } {
  const S = ['t', 'h', 'w'];
  const [xs, wst] = [g.x.strides, g.weight.strides];
  const valid: string[][] = [], term: string[][] = [];
  for (let a = 0; a < 3; a++) {
    const ax = S[a];
    const [st, d, pb, n, O] = [g.stride[a], g.dilation[a], g.padBefore[a], g.size[a], g.outSize[a]];
    const ks = a < split ? [-1] : [...Array(g.kernel[a]).keys()];
    valid.push([]); term.push([]);
    for (const k of ks) {
      const name = a < split ? ax : `${ax}${k}`;
      const shift = a < split ? ` + i32(${times(`k${ax}`, d)})${plusI(-pb)}` : plusI(k * d - pb);
      const always = a >= split && k * d - pb >= 0 && (O - 1) * st + k * d - pb <= n - 1;
      if (always) {
        valid[a].push('');
        const at = `${times(`o${ax}`, st)}${k * d - pb ? ` + ${u(k * d - pb)}` : ''}`;
        term[a].push(times(k * d - pb ? `(${at})` : at, xs[a + 2]));
        continue;
      }
      body.push(`  let p${name} = i32(${times(`o${ax}`, st)})${shift};`);
      valid[a].push(`p${name} >= 0i && p${name} < ${i(n)}`);
      term[a].push(times(`u32(clamp(p${name}, 0i, ${i(n - 1)}))`, xs[a + 2]));
    }
  }
  const loads: string[] = [], tapTerms: number[] = [];
  forEachIndex(valid.map((v) => v.length), (k) => {
    const conds = k.map((kk, a) => valid[a][kk]).filter((c) => c);
    const load = `x_buf[xb + ${k.map((kk, a) => term[a][kk]).join(' + ')}]`;
    loads.push(conds.length ? `select(0.0, ${load}, ${conds.map((c) => `(${c})`).join(' && ')})` : load);
    tapTerms.push(k.reduce((o, kk, a) => o + (a < split ? 0 : kk * wst[a + 2]), 0));
  });
  return { loads, tapTerms };
}

/** Float64 reference: the dweight buffer (extent(weight) elements; the view's elements written, NaN elsewhere). */
export const convBackwardWeightReference = (p: ConvBackwardParams, x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array =>
  gradientReference(plan(p), 'weight', x, dy);

/**
 * The gradient at `wrt` (x or weight), extent(view) elements (the view's written, NaN elsewhere): over
 * every term of the convolution in forEachTerm's order, the other operand times dy.
 */
function gradientReference(g: ConvPlan, wrt: 'x' | 'weight', other: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const view = g[wrt];
  const out = new Float64Array(extent(view)).fill(NaN);
  forEachIndex(view.shape, (idx) => { out[offsetOf(view, idx)] = 0; });
  forEachTerm(g, (b, co, ci, o, k, pos) => {
    const c = Math.floor(co / g.coutG) * g.cinG + ci;
    const xAt = offsetOf(g.x, [b, c, ...pos]), wAt = offsetOf(g.weight, [co, ci, ...k]);
    const [to, from] = wrt === 'x' ? [xAt, wAt] : [wAt, xAt];
    out[to] += other[from] * dy[offsetOf(g.out, [b, co, ...o])];
  });
  return out;
}

// ---------------------------------------------------------------- helpers

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

const offsetOf = (v: View, idx: readonly number[]) => idx.reduce((o, c, a) => o + c * v.strides[a], v.offset);

/** Every term of the forward sum: batch, output channel, channel within the group, output position, tap, input position. */
function forEachTerm(g: ConvPlan, f: (b: number, co: number, ci: number, o: Triple, k: Triple, pos: Triple) => void): void {
  const pos: Triple = [0, 0, 0];
  forEachIndex([g.B, g.Cout, ...g.outSize], ([b, co, ...o]) => {
    const out = o as Triple;
    forEachIndex([g.cinG, ...g.kernel], ([ci, ...k]) => {
      for (let a = 0; a < 3; a++) pos[a] = out[a] * g.stride[a] + k[a] * g.dilation[a] - g.padBefore[a];
      if (pos.some((q, a) => q < 0 || q >= g.size[a])) return;
      f(b, co, ci, out, k as Triple, pos);
    });
  });
}
