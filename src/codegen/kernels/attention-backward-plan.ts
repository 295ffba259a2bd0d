// The attention backward family's plan: operand layouts, tilings, scratch sizes and the WGSL
// helpers every variant shares (attention-backward.ts states the kernels' contract).
import { checkOneToOne } from './norm-backward.ts';
import { planAttention, type AttentionParams, type AttentionPlan } from './attention.ts';
import { type AdapterTraits } from './kernel.ts';
import { type View } from './view.ts';

export interface AttentionBackwardTiling {
  /** invocations per workgroup; default: the multiple of 8 (of subgroupSize) up to 64 that pads a window's rows least */
  workgroupSize?: number;
  /** rows per step: staged in workgroup memory (default up to 32, within 12 KiB), or broadcast from the lanes that loaded them */
  tile?: number;
  /** subgroup variant: rows each invocation owns; every broadcast value is used once per row */
  rowsPerInvocation?: number;
  /** > 0 selects the subgroup variant; correct where every subgroup has at least this many invocations */
  subgroupSize?: number;
}

/**
 * Tiling for an adapter. A CPU adapter (lavapipe) runs a subgroup as SIMD lanes, where a buffer or
 * workgroup-memory load costs a per-lane loop even at one address while a broadcast is a shuffle:
 * with a fixed subgroup size it gets the subgroup variant. Elsewhere rows are staged in workgroup memory.
 */
export function attentionBackwardTilingFor(adapter: AdapterTraits | undefined): AttentionBackwardTiling {
  const s = adapter?.info.subgroupMinSize ?? 0;
  return adapter?.software && adapter.features.has('subgroups') && s > 0 && s === adapter.info.subgroupMaxSize ? { subgroupSize: s } : {};
}

export interface AttentionBackwardParams extends AttentionParams {
  /** d loss / d o, o's shape */
  dO: View;
  /** q's shape; no stride-0 axes */
  dQ: View;
  /** k's shape; stride 0 only on batch axes (it sums over them: a context broadcast over a batch axis) */
  dK: View;
  /** as dK, with stride 0 on the same batch axes */
  dV: View;
  /** relPosBias's shape; requires relPosBias */
  dRelPosBias?: View;
  /** dK and dV are views into one buffer: the key kernel binds it once, as dKV (WebGPU forbids two
   *  writable bindings of one buffer in a dispatch) */
  sharedKVGrad?: boolean;
  backwardTiling?: AttentionBackwardTiling;
}

/** km: the key mask (keys' token axes and batch axes only; no head or head dim) */
export type Op = 'q' | 'k' | 'v' | 'dO' | 'dQ' | 'dK' | 'dV' | 'km';
type Viewed = Exclude<Op, 'km'>;
export interface TokenAxis { n: number; w: number; s: number; bw: number; windows: number; st: Partial<Record<Op, number>> }
export interface BatchAxis { size: number; st: Record<Op, number>; summed: boolean }

/** The plan plus the strides of every operand, gradients included, per batch and token axis. */
export interface Layout {
  plan: AttentionPlan;
  batch: BatchAxis[];
  qAxes: TokenAxis[];
  kAxes: TokenAxis[];
  views: Record<Viewed, View>;
  keyMask: View | null;
  nwin: number;
  /** relative-position table rows */
  entries: number;
}

export const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export function fail(msg: string): never { throw new Error(`attention backward: ${msg}`); }

export function checkShape(name: string, v: View, shape: readonly number[]) {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    fail(`${name} has shape [${v.shape}] but [${shape}] is required`);
  }
}

export function layoutOf(p: AttentionBackwardParams): Layout {
  const plan = planAttention(p);
  checkShape('dO', p.dO, p.q.shape);
  checkShape('dQ', p.dQ, p.q.shape);
  checkShape('dK', p.dK, p.k.shape);
  checkShape('dV', p.dV, p.k.shape);
  if (p.dRelPosBias && !p.relPosBias) fail('dRelPosBias needs relPosBias');
  if (p.dRelPosBias) checkShape('dRelPosBias', p.dRelPosBias, p.relPosBias!.shape);
  const views: Record<Viewed, View> = { q: p.q, k: p.k, v: p.v, dO: p.dO, dQ: p.dQ, dK: p.dK, dV: p.dV };
  const all: [string, View | undefined][] = [...Object.entries(views), ['relPosBias', p.relPosBias], ['dRelPosBias', p.dRelPosBias]];
  for (const [name, v] of all) {
    if (v && [v.offset, ...v.strides].some((s) => !Number.isInteger(s) || s < 0)) fail(`${name} needs a non-negative offset and strides`);
  }
  const zeroAxes = (v: View) => v.shape.map((n, i) => (n > 1 && v.strides[i] === 0 ? i : -1)).filter((i) => i >= 0);
  if (zeroAxes(p.dQ).length) fail('dQ cannot have stride-0 axes (each query row is written once)');
  const nb = p.grid.length - p.tokens.length;
  const batchIdx = p.grid.map((a, i) => (p.tokens.includes(a.name) ? -1 : i)).filter((i) => i >= 0);
  const cross = plan.cross;
  const kvAxis = (gridAxis: number) => (cross ? batchIdx.indexOf(gridAxis) : gridAxis);
  const kvBatchAxes = batchIdx.map(kvAxis);
  for (const g of ['dK', 'dV'] as const) {
    const z = zeroAxes(p[g]);
    if (z.some((a) => !kvBatchAxes.includes(a))) fail(`${g} may have stride 0 on batch axes only`);
    if (z.join() !== zeroAxes(p.dK).join()) fail('dK and dV must have stride 0 on the same batch axes');
  }
  checkOneToOne(p.dQ, p.q.shape, 'attention backward dQ');
  checkOneToOne(p.dK, p.k.shape, 'attention backward dK');
  checkOneToOne(p.dV, p.k.shape, 'attention backward dV');
  if (p.dRelPosBias) {
    if (zeroAxes(p.dRelPosBias).length) fail('dRelPosBias cannot have stride-0 axes');
    checkOneToOne(p.dRelPosBias, p.relPosBias!.shape, 'attention backward dRelPosBias');
  }
  const strideOf = (op: Viewed, gridAxis: number) => views[op].strides[op === 'k' || op === 'v' || op === 'dK' || op === 'dV' ? kvAxis(gridAxis) : gridAxis];
  const ops: Viewed[] = ['q', 'k', 'v', 'dO', 'dQ', 'dK', 'dV'];
  const batch = batchIdx.map((i) => ({
    size: p.grid[i].size,
    st: { ...Object.fromEntries(ops.map((op) => [op, strideOf(op, i)])), km: p.keyMask?.strides[kvAxis(i)] ?? 0 } as Record<Op, number>,
    summed: p.grid[i].size > 1 && p.dK.strides[kvAxis(i)] === 0,
  }));
  const tokenIdx = p.grid.map((a, i) => (p.tokens.includes(a.name) ? i : -1)).filter((i) => i >= 0);
  const qAxes = plan.queryAxes.map((a, t) => ({ n: a.n, w: a.w, s: a.s, bw: a.bw, windows: a.windows,
    st: { q: strideOf('q', tokenIdx[t]), dO: strideOf('dO', tokenIdx[t]), dQ: strideOf('dQ', tokenIdx[t]) } }));
  const kAxes = cross
    ? plan.keyAxes.map((a, j) => ({ n: a.n, w: a.w, s: 0, bw: a.bw, windows: 1,
      st: { ...Object.fromEntries((['k', 'v', 'dK', 'dV'] as const).map((op) => [op, views[op].strides[nb + j]])), km: p.keyMask?.strides[nb + j] ?? 0 } }))
    : plan.queryAxes.map((a, t) => ({ n: a.n, w: a.w, s: a.s, bw: a.bw, windows: a.windows,
      st: { ...Object.fromEntries((['k', 'v', 'dK', 'dV'] as const).map((op) => [op, strideOf(op, tokenIdx[t])])), km: p.keyMask?.strides[tokenIdx[t]] ?? 0 } }));
  return { plan, batch, qAxes, kAxes, views, keyMask: p.keyMask ?? null, nwin: prod(qAxes.map((a) => a.windows)), entries: prod(qAxes.map((a) => 2 * a.bw - 1)) };
}

/** The subgroup bias kernel's table (and a slot per lane for padded rows) fits WebGPU's guaranteed 16 KiB of workgroup memory. */
export const subgroupBiasFits = (entries: number, lanes: number) => (entries + lanes) * 4 <= 16384;

/**
 * f32 elements of the scratch buffer the kernels share: (lse, D) per query row, then, for the subgroup
 * variant with a relative-position table, the bias kernel's partial sums per group and table row.
 */
export function attentionBackwardScratch(p: AttentionParams & Pick<AttentionBackwardParams, 'backwardTiling'>): number {
  const plan = planAttention(p);
  const entries = prod(plan.queryAxes.map((a) => 2 * a.bw - 1));
  const partials = p.relPosBias && p.backwardTiling?.subgroupSize && subgroupBiasFits(entries, p.backwardTiling.subgroupSize) ? plan.groups * entries : 0;
  return 2 * plan.groups * plan.nq + partials;
}

// ---------------------------------------------------------------- WGSL helpers

/** Statements decoding `value` over mixed radix `sizes` (last fastest) into `let names[i]`. */
export function decode(value: string, sizes: number[], names: string[], tmp: string): string[] {
  if (sizes.length === 0) return [];
  const lines = [`var ${tmp} = ${value};`];
  for (let i = sizes.length - 1; i >= 0; i--) {
    if (sizes[i] === 1) { lines.push(`let ${names[i]} = 0u;`); continue; }
    lines.push(i === 0 ? `let ${names[i]} = ${tmp};` : `let ${names[i]} = ${tmp} % ${sizes[i]}u; ${tmp} = ${tmp} / ${sizes[i]}u;`);
  }
  return lines;
}

/** WGSL mixed-radix flattening of `names` over `sizes` (first most significant). */
export const flatten = (names: string[], sizes: number[]) =>
  names.reduce((acc, n, i) => (i === 0 ? n : sizes[i] === 1 ? acc : `(${acc}) * ${sizes[i]}u + ${n}`), '0u');

/** Loads 4 head-dim elements [4i, 4i + 4) of a row at `base` (zeros past dh). */
export function loader(op: Op, v: View, dh: number): string {
  const s = v.strides.at(-1)!;
  const lane = (c: number) => (c === 0 || dh % 4 === 0
    ? `b_${op}[at + ${c * s}u]`
    : `select(0.0, b_${op}[at + select(0u, ${c * s}u, i * 4u + ${c}u < ${dh}u)], i * 4u + ${c}u < ${dh}u)`);
  return `fn ld_${op}(base: u32, i: u32) -> vec4f { let at = base + i * ${4 * s}u; return vec4f(${[0, 1, 2, 3].map(lane).join(', ')}); }`;
}

export function storer(op: Op, buf: string, v: View, dh: number): string {
  const s = v.strides.at(-1)!;
  const lanes = [0, 1, 2, 3].map((c) => {
    const st = `b_${buf}[at + ${c * s}u] = x[${c}];`;
    return c === 0 || dh % 4 === 0 ? st : `if (i * 4u + ${c}u < ${dh}u) { ${st} }`;
  });
  return `fn st_${op}(base: u32, i: u32, x: vec4f) { let at = base + i * ${4 * s}u; ${lanes.join(' ')} }`;
}

/** Base offset of `op`'s row block for the current batch indices and head (stride-0 batch axes skipped). */
export function baseOf(L: Layout, op: Viewed, batchName: (i: number) => string): string {
  const v = L.views[op];
  return [`${v.offset}u`, `head * ${v.strides.at(-2)}u`,
    ...L.batch.flatMap((b, i) => (b.st[op] && b.size > 1 ? [`${batchName(i)} * ${b.st[op]}u`] : []))].join(' + ');
}

/** Base offset of the key mask for the current batch indices (its key axes add their `km` strides). */
export function maskBaseOf(L: Layout, batchName: (i: number) => string): string {
  return [`${L.keyMask!.offset}u`, ...L.batch.flatMap((b, i) => (b.st.km && b.size > 1 ? [`${batchName(i)} * ${b.st.km}u`] : []))].join(' + ');
}

/** `var name = 0u;` and the place() operand adding the key's mask offset to it, when there is a key mask. */
export const maskOps = (L: Layout, name: string): [string, Op][] => (L.keyMask ? [[name, 'km']] : []);

/**
 * Statements placing window position `idx` of `axes`: rolled coordinate c, original coordinate g,
 * offsets added to the given variables, Swin region code and relative-position code (query side
 * (p + w − 1) · radix, key side p · radix, so their difference is the table row).
 */
export function place(axes: TokenAxis[], idx: string, px: string, ops: [string, Op][], win: (a: number) => string,
  masked: boolean, bias: { radix: number[]; query: boolean } | null): string[] {
  const pos = axes.map((_, a) => `${px}p${a}`);
  const lines = decode(idx, axes.map((a) => a.w), pos, `${px}rem`);
  axes.forEach((a, i) => {
    lines.push(`let ${px}c${i} = ${a.windows > 1 ? `${win(i)} * ${a.w}u + ` : ''}${pos[i]};`);
    lines.push(`let ${px}g${i} = ${a.s > 0 ? `(${px}c${i} + ${a.s}u) % ${a.n}u` : `${px}c${i}`};`);
  });
  for (const [out, op] of ops) {
    const terms = axes.flatMap((a, i) => (a.st[op] && a.n > 1 ? [`${px}g${i} * ${a.st[op]}u`] : []));
    if (terms.length) lines.push(`${out} += ${terms.join(' + ')};`);
  }
  if (masked) {
    const reg = (a: TokenAxis, i: number) => (a.s > 0 ? `select(select(2u, 1u, ${px}c${i} < ${a.n - a.s}u), 0u, ${px}c${i} < ${a.n - a.w}u) * ${3 ** i}u` : '0u');
    lines.push(`let ${px}region = ${axes.map(reg).join(' + ')};`);
  }
  if (bias) {
    // with a larger bias window, the in-window index is decoded again over it
    const bpos = axes.some((a) => a.bw !== a.w) ? axes.map((_, a) => `${px}bp${a}`) : pos;
    if (bpos !== pos) lines.push(...decode(idx, axes.map((a) => a.bw), bpos, `${px}brem`));
    const term = (a: TokenAxis, i: number) => `${bias.query ? `(${bpos[i]} + ${a.bw - 1}u)` : bpos[i]} * ${bias.radix[i]}u`;
    lines.push(`let ${px}bias = ${axes.map(term).join(' + ')};`);
  }
  return lines;
}

export const decls = (names: { name: string; write: boolean }[]) =>
  names.map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.write ? 'read_write' : 'read'}> b_${b.name}: array<f32>;`);

export const bindingsOf = (names: { name: string; write: boolean }[]) =>
  names.map((b) => ({ name: b.name, access: b.write ? 'read_write' as const : 'read' as const }));

/** Workgroup size (a multiple of 8 up to 64) that pads `rows` least. */
export function pickWorkgroupSize(rows: number): number {
  let best = 64;
  for (let wg = 64; wg >= 8; wg -= 8) if (Math.ceil(rows / wg) * wg < Math.ceil(rows / best) * best) best = wg;
  return best;
}

/** FNV-1a of the WGSL: the cache key follows every compile-time parameter. */
export function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36) + s.length.toString(36);
}

export interface Common {
  L: Layout; p: AttentionBackwardParams; dh: number; DH4: number; scale: string; masked: boolean;
  bias: View | undefined; radix: number[]; inputs: { name: string; write: boolean }[];
}

export function commonOf(p: AttentionBackwardParams): Common {
  const L = layoutOf(p);
  const dh = L.plan.dh;
  return {
    L, p, dh, DH4: Math.ceil(dh / 4), scale: L.plan.scale.toPrecision(9), masked: L.plan.masked, bias: p.relPosBias, radix: L.plan.radix,
    inputs: [...['q', 'k', 'v'], ...(p.relPosBias ? ['relPosBias'] : []), ...(p.keyMask ? ['km'] : []), 'dO'].map((name) => ({ name, write: false })),
  };
}

/** relPosBias element for a query's and a key's bias codes */
export const biasTerm = (c: Common, rowCode: string, keyCode: string) =>
  c.bias ? `b_relPosBias[${c.bias.offset}u + (${rowCode} - ${keyCode}) * ${c.bias.strides[0]}u + head * ${c.bias.strides[1]}u]` : '';

export function tilingOf(c: Common, rows: number, staged: number) {
  const t = c.p.backwardTiling ?? {};
  const WG = t.workgroupSize ?? pickWorkgroupSize(rows);
  // two vec4 rows plus four words per staged row, within 12 KiB of the 16 KiB workgroup memory WebGPU guarantees
  const T = t.tile ?? Math.max(1, Math.min(32, staged, Math.floor(12288 / (32 * c.DH4 + 16))));
  if (![WG, T].every((x) => Number.isInteger(x) && x >= 1) || WG > 256) fail('backwardTiling: workgroupSize (1..256) and tile must be positive integers');
  if (T * (32 * c.DH4 + 16) > 16384) fail(`backwardTiling: a tile of ${T} rows of head dim ${c.dh} exceeds 16 KiB of workgroup memory`);
  return { WG, T };
}
