/**
 * Backward of the attention kernel (attention.ts): o_i = Σ_j P_ij v_j, P_i = softmax_j(s_ij),
 * s_ij = scale q_i·k_j + bias[rel(i, j), head], over the keys j that query i sees (same window, same
 * Swin region). With dP_ij = dO_i·v_j and D_i = Σ_j P_ij dP_ij (= dO_i·o_i):
 *   dS_ij = P_ij (dP_ij − D_i)
 *   dq_i = scale Σ_j dS_ij k_j     dk_j = scale Σ_i dS_ij q_i     dv_j = Σ_i P_ij dO_i
 *   dbias[r, head] = Σ_{(i, j) at offset r} dS_ij
 * FlashAttention-2 style: scores are recomputed, the score matrix is never stored. Three kernels, run in
 * this order, each writing its outputs with `=` once per element (deterministic, no atomics):
 *  1. rows (per query row): the row's log-sum-exp, D and dq; lse and D go to the scratch buffer.
 *     Bindings: q, k, v, [relPosBias], dO, then dQ, scratch.
 *  2. keys (per key row; loops over the queries that see the key, and over the batch axes where dK/dV
 *     have stride 0, which it sums): dk and dv from the scratch's lse and D.
 *     Bindings: q, k, v, [relPosBias], dO, scratch, then dK, dV (or one dKV, see sharedKVGrad).
 *  3. bias (only with dRelPosBias): the sum over the (query, key) pairs at each table entry's offset.
 *     Bindings: q, k, v, relPosBias, dO, scratch, then dRelPosBias (subgroup variant: two kernels, see below).
 * Two variants, chosen by backwardTiling (attentionBackwardTilingFor picks one per adapter):
 *  - workgroup memory (GPUs): one invocation per row, the other side's rows staged `tile` at a time in
 *    workgroup memory; the rows kernel makes two passes over the keys (lse and D with online rescaling,
 *    then dq); bias: one workgroup per (table entry, head), a fixed-order tree sum.
 *  - subgroups (CPU adapters, subgroupSize > 0): R rows per invocation, the other side's rows loaded once
 *    per subgroup and broadcast; the rows kernel makes one pass (see rowsKernelSubgroup); bias: one
 *    subgroup per group sums into a table in workgroup memory, written to the scratch, then a second
 *    kernel (bias-sum; bindings scratch, dRelPosBias) adds the groups' tables in a fixed order.
 * Scratch: attentionBackwardScratch(p) f32 elements, [groups * nq, 2] (lse, D) per query row, row index
 * group * nq + row as attentionReference's lse, then (subgroup bias) [groups, table rows] partial sums.
 * The same buffer may be bound to q, k and v.
 */
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type AdapterTraits, type KernelSpec } from './kernel.ts';
import { planAttention, type AttentionInputs, type AttentionParams, type AttentionPlan } from './attention.ts';
import { checkOneToOne } from './norm-backward.ts';
import { workgroupSumWgsl } from './reduce.ts';
import { extent, forEachIndex, type View } from './view.ts';

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

type Op = 'q' | 'k' | 'v' | 'dO' | 'dQ' | 'dK' | 'dV';
interface TokenAxis { n: number; w: number; s: number; windows: number; st: Partial<Record<Op, number>> }
interface BatchAxis { size: number; st: Record<Op, number>; summed: boolean }

/** The plan plus the strides of every operand, gradients included, per batch and token axis. */
interface Layout {
  plan: AttentionPlan;
  batch: BatchAxis[];
  qAxes: TokenAxis[];
  kAxes: TokenAxis[];
  views: Record<Op, View>;
  nwin: number;
  /** relative-position table rows */
  entries: number;
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function fail(msg: string): never { throw new Error(`attention backward: ${msg}`); }

function checkShape(name: string, v: View, shape: readonly number[]) {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    fail(`${name} has shape [${v.shape}] but [${shape}] is required`);
  }
}

function layoutOf(p: AttentionBackwardParams): Layout {
  const plan = planAttention(p);
  checkShape('dO', p.dO, p.q.shape);
  checkShape('dQ', p.dQ, p.q.shape);
  checkShape('dK', p.dK, p.k.shape);
  checkShape('dV', p.dV, p.k.shape);
  if (p.dRelPosBias && !p.relPosBias) fail('dRelPosBias needs relPosBias');
  if (p.dRelPosBias) checkShape('dRelPosBias', p.dRelPosBias, p.relPosBias!.shape);
  const views: Record<Op, View> = { q: p.q, k: p.k, v: p.v, dO: p.dO, dQ: p.dQ, dK: p.dK, dV: p.dV };
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
  const strideOf = (op: Op, gridAxis: number) => views[op].strides[op === 'k' || op === 'v' || op === 'dK' || op === 'dV' ? kvAxis(gridAxis) : gridAxis];
  const ops: Op[] = ['q', 'k', 'v', 'dO', 'dQ', 'dK', 'dV'];
  const batch = batchIdx.map((i) => ({
    size: p.grid[i].size,
    st: Object.fromEntries(ops.map((op) => [op, strideOf(op, i)])) as Record<Op, number>,
    summed: p.grid[i].size > 1 && p.dK.strides[kvAxis(i)] === 0,
  }));
  const tokenIdx = p.grid.map((a, i) => (p.tokens.includes(a.name) ? i : -1)).filter((i) => i >= 0);
  const qAxes = plan.queryAxes.map((a, t) => ({ n: a.n, w: a.w, s: a.s, windows: a.windows,
    st: { q: strideOf('q', tokenIdx[t]), dO: strideOf('dO', tokenIdx[t]), dQ: strideOf('dQ', tokenIdx[t]) } }));
  const kAxes = cross
    ? plan.keyAxes.map((a, j) => ({ n: a.n, w: a.w, s: 0, windows: 1,
      st: Object.fromEntries((['k', 'v', 'dK', 'dV'] as const).map((op) => [op, views[op].strides[nb + j]])) }))
    : plan.queryAxes.map((a, t) => ({ n: a.n, w: a.w, s: a.s, windows: a.windows,
      st: Object.fromEntries((['k', 'v', 'dK', 'dV'] as const).map((op) => [op, strideOf(op, tokenIdx[t])])) }));
  return { plan, batch, qAxes, kAxes, views, nwin: prod(qAxes.map((a) => a.windows)), entries: prod(qAxes.map((a) => 2 * a.w - 1)) };
}

/** The subgroup bias kernel's table (and a slot per lane for padded rows) fits WebGPU's guaranteed 16 KiB of workgroup memory. */
const subgroupBiasFits = (entries: number, lanes: number) => (entries + lanes) * 4 <= 16384;

/**
 * f32 elements of the scratch buffer the kernels share: (lse, D) per query row, then, for the subgroup
 * variant with a relative-position table, the bias kernel's partial sums per group and table row.
 */
export function attentionBackwardScratch(p: AttentionParams & Pick<AttentionBackwardParams, 'backwardTiling'>): number {
  const plan = planAttention(p);
  const entries = prod(plan.queryAxes.map((a) => 2 * a.w - 1));
  const partials = p.relPosBias && p.backwardTiling?.subgroupSize && subgroupBiasFits(entries, p.backwardTiling.subgroupSize) ? plan.groups * entries : 0;
  return 2 * plan.groups * plan.nq + partials;
}

// ---------------------------------------------------------------- WGSL helpers

/** Statements decoding `value` over mixed radix `sizes` (last fastest) into `let names[i]`. */
function decode(value: string, sizes: number[], names: string[], tmp: string): string[] {
  if (sizes.length === 0) return [];
  const lines = [`var ${tmp} = ${value};`];
  for (let i = sizes.length - 1; i >= 0; i--) {
    if (sizes[i] === 1) { lines.push(`let ${names[i]} = 0u;`); continue; }
    lines.push(i === 0 ? `let ${names[i]} = ${tmp};` : `let ${names[i]} = ${tmp} % ${sizes[i]}u; ${tmp} = ${tmp} / ${sizes[i]}u;`);
  }
  return lines;
}

/** WGSL mixed-radix flattening of `names` over `sizes` (first most significant). */
const flatten = (names: string[], sizes: number[]) =>
  names.reduce((acc, n, i) => (i === 0 ? n : sizes[i] === 1 ? acc : `(${acc}) * ${sizes[i]}u + ${n}`), '0u');

/** Loads 4 head-dim elements [4i, 4i + 4) of a row at `base` (zeros past dh). */
function loader(op: Op, v: View, dh: number): string {
  const s = v.strides.at(-1)!;
  const lane = (c: number) => (c === 0 || dh % 4 === 0
    ? `b_${op}[at + ${c * s}u]`
    : `select(0.0, b_${op}[at + select(0u, ${c * s}u, i * 4u + ${c}u < ${dh}u)], i * 4u + ${c}u < ${dh}u)`);
  return `fn ld_${op}(base: u32, i: u32) -> vec4f { let at = base + i * ${4 * s}u; return vec4f(${[0, 1, 2, 3].map(lane).join(', ')}); }`;
}

function storer(op: Op, buf: string, v: View, dh: number): string {
  const s = v.strides.at(-1)!;
  const lanes = [0, 1, 2, 3].map((c) => {
    const st = `b_${buf}[at + ${c * s}u] = x[${c}];`;
    return c === 0 || dh % 4 === 0 ? st : `if (i * 4u + ${c}u < ${dh}u) { ${st} }`;
  });
  return `fn st_${op}(base: u32, i: u32, x: vec4f) { let at = base + i * ${4 * s}u; ${lanes.join(' ')} }`;
}

/** Base offset of `op`'s row block for the current batch indices and head (stride-0 batch axes skipped). */
function baseOf(L: Layout, op: Op, batchName: (i: number) => string): string {
  const v = L.views[op];
  return [`${v.offset}u`, `head * ${v.strides.at(-2)}u`,
    ...L.batch.flatMap((b, i) => (b.st[op] && b.size > 1 ? [`${batchName(i)} * ${b.st[op]}u`] : []))].join(' + ');
}

/**
 * Statements placing window position `idx` of `axes`: rolled coordinate c, original coordinate g,
 * offsets added to the given variables, Swin region code and relative-position code (query side
 * (p + w − 1) · radix, key side p · radix, so their difference is the table row).
 */
function place(axes: TokenAxis[], idx: string, px: string, ops: [string, Op][], win: (a: number) => string,
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
    const term = (a: TokenAxis, i: number) => `${bias.query ? `(${pos[i]} + ${a.w - 1}u)` : pos[i]} * ${bias.radix[i]}u`;
    lines.push(`let ${px}bias = ${axes.map(term).join(' + ')};`);
  }
  return lines;
}

const decls = (names: { name: string; write: boolean }[]) =>
  names.map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.write ? 'read_write' : 'read'}> b_${b.name}: array<f32>;`);

const bindingsOf = (names: { name: string; write: boolean }[]) =>
  names.map((b) => ({ name: b.name, access: b.write ? 'read_write' as const : 'read' as const }));

/** Workgroup size (a multiple of 8 up to 64) that pads `rows` least. */
function pickWorkgroupSize(rows: number): number {
  let best = 64;
  for (let wg = 64; wg >= 8; wg -= 8) if (Math.ceil(rows / wg) * wg < Math.ceil(rows / best) * best) best = wg;
  return best;
}

/** FNV-1a of the WGSL: the cache key follows every compile-time parameter. */
function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36) + s.length.toString(36);
}

interface Common {
  L: Layout; p: AttentionBackwardParams; dh: number; DH4: number; scale: string; masked: boolean;
  bias: View | undefined; radix: number[]; inputs: { name: string; write: boolean }[];
}

function commonOf(p: AttentionBackwardParams): Common {
  const L = layoutOf(p);
  const dh = L.plan.dh;
  return {
    L, p, dh, DH4: Math.ceil(dh / 4), scale: L.plan.scale.toPrecision(9), masked: L.plan.masked, bias: p.relPosBias, radix: L.plan.radix,
    inputs: [...['q', 'k', 'v'], ...(p.relPosBias ? ['relPosBias'] : []), 'dO'].map((name) => ({ name, write: false })),
  };
}

/** relPosBias element for a query's and a key's bias codes */
const biasTerm = (c: Common, rowCode: string, keyCode: string) =>
  c.bias ? `b_relPosBias[${c.bias.offset}u + (${rowCode} - ${keyCode}) * ${c.bias.strides[0]}u + head * ${c.bias.strides[1]}u]` : '';

function tilingOf(c: Common, rows: number, staged: number) {
  const t = c.p.backwardTiling ?? {};
  const WG = t.workgroupSize ?? pickWorkgroupSize(rows);
  // two vec4 rows plus four words per staged row, within 12 KiB of the 16 KiB workgroup memory WebGPU guarantees
  const T = t.tile ?? Math.max(1, Math.min(32, staged, Math.floor(12288 / (32 * c.DH4 + 16))));
  if (![WG, T].every((x) => Number.isInteger(x) && x >= 1) || WG > 256) fail('backwardTiling: workgroupSize (1..256) and tile must be positive integers');
  if (T * (32 * c.DH4 + 16) > 16384) fail(`backwardTiling: a tile of ${T} rows of head dim ${c.dh} exceeds 16 KiB of workgroup memory`);
  return { WG, T };
}

// ---------------------------------------------------------------- kernel 1: rows (dq, lse, D)

function rowsKernel(c: Common): KernelSpec {
  const { L, DH4, masked, bias } = c;
  const { plan } = L;
  const { nq, nk } = plan;
  const { WG, T } = tilingOf(c, nq, nk);
  const tiles = Math.ceil(nq / WG);
  const total = plan.groups * tiles;
  const names = [...c.inputs, { name: 'dQ', write: true }, { name: 'scratch', write: true }];
  const win = L.qAxes.map((_, i) => `win${i}`);
  const bname = (i: number) => `b${i}`;
  const keyWin = (i: number) => (plan.cross ? '0u' : win[i]);
  const keyLoop = (body: string[]) => [
    `for (var j0 = 0u; j0 < NK; j0 += T) {`,
    `  for (var e = lid; e < T * DH4; e += WG) {`,
    `    let jj = e / DH4; let d = e % DH4;`,
    `    var koff = kb; var voff = vb;`,
    ...place(L.kAxes, 'min(j0 + jj, NK - 1u)', 'k', [['koff', 'k'], ['voff', 'v']], keyWin, masked, bias ? { radix: c.radix, query: false } : null)
      .map((l) => `    ${l}`),
    `    kt[e] = ld_k(koff, d); vt[e] = ld_v(voff, d);`,
    masked ? `    if (d == 0u) { kreg[jj] = kregion; }` : '',
    bias ? `    if (d == 0u) { kbia[jj] = kbias; }` : '',
    `  }`,
    `  workgroupBarrier();`,
    `  for (var jj = 0u; jj < min(T, NK - j0); jj++) {`,
    // explicit zeroing: Dawn + lavapipe kept a loop-body var's old value without it (see attention.ts)
    `    var s = 0.0; var dp = 0.0;`,
    `    for (var d = 0u; d < DH4; d++) { s += dot(qv[d], kt[jj * DH4 + d]); dp += dot(gv[d], vt[jj * DH4 + d]); }`,
    bias ? `    s += ${biasTerm(c, 'qbias', 'kbia[jj]')};` : '',
    `    let keep = ${masked ? 'qregion == kreg[jj]' : 'true'};`,
    ...body.map((l) => `    ${l}`),
    `  }`,
    `  workgroupBarrier();`,
    `}`];
  const wgsl = [
    ...decls(names),
    `const NQ = ${nq}u; const NK = ${nk}u; const DH4 = ${DH4}u; const WG = ${WG}u; const T = ${T}u;`,
    loader('q', L.views.q, c.dh), loader('k', L.views.k, c.dh), loader('v', L.views.v, c.dh), loader('dO', L.views.dO, c.dh),
    storer('dQ', 'dQ', L.views.dQ, c.dh),
    `var<workgroup> kt: array<vec4f, ${T * DH4}>;`, `var<workgroup> vt: array<vec4f, ${T * DH4}>;`,
    masked ? `var<workgroup> kreg: array<u32, ${T}>;` : '', bias ? `var<workgroup> kbia: array<u32, ${T}>;` : '',
    `@compute @workgroup_size(${WG})`,
    GRID_MAIN,
    `let wg = ${GRID_WORKGROUP};`,
    `if (wg >= ${total}u) { return; }`,
    `let tile = wg % ${tiles}u; let grp = wg / ${tiles}u;`,
    ...decode('grp', [...L.batch.map((b) => b.size), plan.heads, ...L.qAxes.map((a) => a.windows)], [...L.batch.map((_, i) => bname(i)), 'head', ...win], 'grem'),
    `let kb = ${baseOf(L, 'k', bname)}; let vb = ${baseOf(L, 'v', bname)};`,
    `let row = tile * WG + lid;`,
    `var qoff = ${baseOf(L, 'q', bname)}; var gooff = ${baseOf(L, 'dO', bname)}; var dqoff = ${baseOf(L, 'dQ', bname)};`,
    ...place(L.qAxes, 'min(row, NQ - 1u)', 'q', [['qoff', 'q'], ['gooff', 'dO'], ['dqoff', 'dQ']], (i) => win[i], masked,
      bias ? { radix: c.radix, query: true } : null),
    `var qv: array<vec4f, ${DH4}>; var gv: array<vec4f, ${DH4}>; var acc: array<vec4f, ${DH4}>;`,
    `for (var d = 0u; d < DH4; d++) { qv[d] = ld_q(qoff, d) * ${c.scale}; gv[d] = ld_dO(gooff, d); acc[d] = vec4f(0.0); }`,
    // pass 1: online max m, l = Σ e^(s-m) and a = Σ e^(s-m) dp, rescaled together
    `var m = -3.0e38; var l = 0.0; var a = 0.0;`,
    ...keyLoop([
      `if (keep && s > m) { let f = exp(m - s); l *= f; a *= f; m = s; }`,
      `let pj = select(0.0, exp(s - m), keep);`,
      `l += pj; a += pj * dp;`]),
    `let lse = m + log(l); let dd = a / l;`,
    // pass 2: exact P from lse, dq = Σ P (dp − D) k
    ...keyLoop([
      `let ds = select(0.0, exp(s - lse), keep) * (dp - dd);`,
      `for (var d = 0u; d < DH4; d++) { acc[d] += ds * kt[jj * DH4 + d]; }`]),
    `if (row < NQ) {`,
    `  for (var d = 0u; d < DH4; d++) { st_dQ(dqoff, d, acc[d] * ${c.scale}); }`,
    `  b_scratch[(grp * NQ + row) * 2u] = lse; b_scratch[(grp * NQ + row) * 2u + 1u] = dd;`,
    `}`,
    `}`].filter((x) => x !== '').join('\n');
  return { key: `attention-backward-rows:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total) };
}

// ---------------------------------------------------------------- kernel 2: keys (dk, dv)

function keysKernel(c: Common): KernelSpec {
  const { L, DH4, masked, bias, p } = c;
  const { plan } = L;
  const { nq, nk } = plan;
  const { WG, T } = tilingOf(c, nk, nq);
  const kept = L.batch.map((_, i) => i).filter((i) => !L.batch[i].summed);
  const summed = L.batch.map((_, i) => i).filter((i) => L.batch[i].summed);
  const nsum = prod(summed.map((i) => L.batch[i].size));
  // key groups: kept batch axes, head, windows (cross-attention has one window)
  const groupSizes = [...kept.map((i) => L.batch[i].size), plan.heads, ...L.qAxes.map((a) => a.windows)];
  const tiles = Math.ceil(nk / WG);
  const total = prod(groupSizes) * tiles;
  const outs = p.sharedKVGrad ? [{ name: 'dKV', write: true }] : [{ name: 'dK', write: true }, { name: 'dV', write: true }];
  const names = [...c.inputs, { name: 'scratch', write: false }, ...outs];
  const win = L.qAxes.map((_, i) => `win${i}`);
  const bname = (i: number) => `b${i}`;
  const keyWin = (i: number) => (plan.cross ? '0u' : win[i]);
  const qgroup = flatten([...L.batch.map((_, i) => bname(i)), 'head', ...win], [...L.batch.map((b) => b.size), plan.heads, ...L.qAxes.map((a) => a.windows)]);
  const body = [
    ...decode('cs', summed.map((i) => L.batch[i].size), summed.map(bname), 'crem'),
    `let qgrp = ${qgroup};`,
    `let qb = ${baseOf(L, 'q', bname)}; let dob = ${baseOf(L, 'dO', bname)};`,
    `let kb = ${baseOf(L, 'k', bname)} + ktok; let vb = ${baseOf(L, 'v', bname)} + vtok;`,
    `for (var d = 0u; d < DH4; d++) { kv[d] = ld_k(kb, d) * ${c.scale}; vv[d] = ld_v(vb, d); }`,
    `for (var i0 = 0u; i0 < NQ; i0 += T) {`,
    `  for (var e = lid; e < T * DH4; e += WG) {`,
    `    let ii = e / DH4; let d = e % DH4; let qi = min(i0 + ii, NQ - 1u);`,
    `    var qoff = qb; var gooff = dob;`,
    ...place(L.qAxes, 'qi', 'q', [['qoff', 'q'], ['gooff', 'dO']], (i) => win[i], masked, bias ? { radix: c.radix, query: true } : null)
      .map((l) => `    ${l}`),
    `    qt[e] = ld_q(qoff, d); gt[e] = ld_dO(gooff, d);`,
    `    if (d == 0u) { lt[ii] = b_scratch[(qgrp * NQ + qi) * 2u]; dt[ii] = b_scratch[(qgrp * NQ + qi) * 2u + 1u];` +
      `${masked ? ' qreg[ii] = qregion;' : ''}${bias ? ' qbia[ii] = qbias;' : ''} }`,
    `  }`,
    `  workgroupBarrier();`,
    `  for (var ii = 0u; ii < min(T, NQ - i0); ii++) {`,
    `    var s = 0.0; var dp = 0.0;`,
    `    for (var d = 0u; d < DH4; d++) { s += dot(qt[ii * DH4 + d], kv[d]); dp += dot(gt[ii * DH4 + d], vv[d]); }`,
    bias ? `    s += ${biasTerm(c, 'qbia[ii]', 'kbias')};` : '',
    `    let pj = select(0.0, exp(s - lt[ii]), ${masked ? 'qreg[ii] == kregion' : 'true'});`,
    `    let ds = pj * (dp - dt[ii]);`,
    `    for (var d = 0u; d < DH4; d++) { dk[d] += ds * qt[ii * DH4 + d]; dv[d] += pj * gt[ii * DH4 + d]; }`,
    `  }`,
    `  workgroupBarrier();`,
    `}`];
  const wgsl = [
    ...decls(names),
    `const NQ = ${nq}u; const NK = ${nk}u; const DH4 = ${DH4}u; const WG = ${WG}u; const T = ${T}u;`,
    loader('q', L.views.q, c.dh), loader('k', L.views.k, c.dh), loader('v', L.views.v, c.dh), loader('dO', L.views.dO, c.dh),
    storer('dK', p.sharedKVGrad ? 'dKV' : 'dK', L.views.dK, c.dh), storer('dV', p.sharedKVGrad ? 'dKV' : 'dV', L.views.dV, c.dh),
    `var<workgroup> qt: array<vec4f, ${T * DH4}>;`, `var<workgroup> gt: array<vec4f, ${T * DH4}>;`,
    `var<workgroup> lt: array<f32, ${T}>;`, `var<workgroup> dt: array<f32, ${T}>;`,
    masked ? `var<workgroup> qreg: array<u32, ${T}>;` : '', bias ? `var<workgroup> qbia: array<u32, ${T}>;` : '',
    `@compute @workgroup_size(${WG})`,
    GRID_MAIN,
    `let wg = ${GRID_WORKGROUP};`,
    `if (wg >= ${total}u) { return; }`,
    `let tile = wg % ${tiles}u;`,
    ...decode(`wg / ${tiles}u`, groupSizes, [...kept.map(bname), 'head', ...win], 'grem'),
    `let row = tile * WG + lid;`,
    `var ktok = 0u; var vtok = 0u; var dkoff = ${baseOf(L, 'dK', bname)}; var dvoff = ${baseOf(L, 'dV', bname)};`,
    ...place(L.kAxes, 'min(row, NK - 1u)', 'k', [['ktok', 'k'], ['vtok', 'v'], ['dkoff', 'dK'], ['dvoff', 'dV']], keyWin, masked,
      bias ? { radix: c.radix, query: false } : null),
    `var kv: array<vec4f, ${DH4}>; var vv: array<vec4f, ${DH4}>; var dk: array<vec4f, ${DH4}>; var dv: array<vec4f, ${DH4}>;`,
    `for (var d = 0u; d < DH4; d++) { dk[d] = vec4f(0.0); dv[d] = vec4f(0.0); }`,
    // the batch entries that share this key's gradient element (stride 0 in dK/dV), summed in order
    ...(summed.length ? [`for (var cs = 0u; cs < ${nsum}u; cs++) {`, ...body.map((l) => `  ${l}`), `}`] : ['{', ...body.map((l) => `  ${l}`), '}']),
    `if (row < NK) { for (var d = 0u; d < DH4; d++) { st_dK(dkoff, d, dk[d] * ${c.scale}); st_dV(dvoff, d, dv[d]); } }`,
    `}`].filter((x) => x !== '').join('\n');
  return { key: `attention-backward-keys:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total) };
}

// ---------------------------------------------------------------- subgroup variant (CPU adapters)
//
// On a CPU adapter a subgroup is one SIMD group: a load instruction costs a per-lane loop even when
// all lanes read one address (the workgroup variant's per-pair reads of workgroup memory dominate its
// time there), while subgroupBroadcast is a shuffle. So each invocation owns R rows in registers, the lanes load the next `tile` rows of the
// other side once per subgroup (lane e: vec4 slice e of them) and broadcast each slice, which all R
// rows then use. Rows, tile rows and head-dim slices are unrolled into scalar names (nothing indexed
// dynamically); prologue and epilogue walk the head dim through select chains, as the forward does,
// to keep memory instructions, and LLVM's compile time, small.

/** vec4 access: unit stride along the head dim and every row start a multiple of 4 elements. */
const vec4Ok = (v: View, dh: number) => dh % 4 === 0 && v.strides.at(-1) === 1 && v.offset % 4 === 0 && v.strides.slice(0, -1).every((s) => s % 4 === 0);

/** One vec4 load per slice where the layout allows it (a quarter of the load instructions). */
const vecLoader = (op: Op, v: View, dh: number) =>
  (vec4Ok(v, dh) ? `fn ld_${op}(base: u32, i: u32) -> vec4f { return b_${op}[(base >> 2u) + i]; }` : loader(op, v, dh));
const vecStorer = (op: Op, buf: string, v: View, dh: number) =>
  (vec4Ok(v, dh) ? `fn st_${op}(base: u32, i: u32, x: vec4f) { b_${buf}[(base >> 2u) + i] = x; }` : storer(op, buf, v, dh));

/** Declarations with an element type per binding (f32 unless given). */
const typedDecls = (names: { name: string; write: boolean }[], types: Record<string, string>) =>
  names.map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.write ? 'read_write' : 'read'}> b_${b.name}: array<${types[b.name] ?? 'f32'}>;`);

function subgroupTilingOf(c: Common) {
  const t = c.p.backwardTiling ?? {};
  const S = t.subgroupSize!;
  // measured on lavapipe (bench/attention-backward.ts): two rows per invocation beat one; four gained
  // ~10% at head dim 32 but multiplied LLVM's compile time by 4-5 (to ~10 s per kernel)
  const R = t.rowsPerInvocation ?? (c.DH4 <= 2 ? 4 : c.DH4 <= 8 ? 2 : 1);
  // the tile's vec4 slices fill the subgroup: one load per lane and operand
  const T = t.tile ?? Math.max(1, Math.floor(S / c.DH4));
  // one subgroup per workgroup measured a little faster than eight (more workgroups to spread)
  const WG = t.workgroupSize ?? S;
  if (![S, R, T, WG].every((x) => Number.isInteger(x) && x >= 1) || WG > 256 || WG % S !== 0) {
    fail(`backwardTiling: the subgroup variant needs positive integers and a workgroup size up to 256 that is a multiple of ${S}`);
  }
  if (R * T > 64) fail(`backwardTiling: rowsPerInvocation × tile = ${R * T} unrolls too much code (at most 64)`);
  return { S, R, T, WG };
}

/**
 * `subgroupBroadcast` of vec4 slice d of tile row t from the load slots `src`i (lane e of slot i holds
 * element i·S + e of the tile's T·DH4 slices).
 */
const bcast = (S: number, DH4: number) => (src: string, t: number, d: number) =>
  `subgroupBroadcast(${src}${Math.floor((t * DH4 + d) / S)}, ${(t * DH4 + d) % S}u)`;

/** select chain picking `name(d)` for the loop's d (unrolled names read in a loop) */
const pickOf = (DH4: number) => (name: (d: number) => string) =>
  range(DH4).slice(1).reduce((acc, d) => `select(${acc}, ${name(d)}, d == ${d}u)`, name(0));

/**
 * Rows kernel, subgroup variant, in one pass over the keys: with online max m, e_j = e^(s_j − m),
 * l = Σ e_j, a = Σ e_j dp_j, A = Σ e_j dp_j k_j and B = Σ e_j k_j (rescaled together once per tile),
 * D = a / l and dq = scale (A − D B) / l, which equals scale Σ_j P_j (dp_j − D) k_j and rounds on
 * the same scale, Σ_j P_j (|dp_j| + |D|) |k_j|.
 */
function rowsKernelSubgroup(c: Common): KernelSpec {
  const { L, DH4, masked, bias } = c;
  const { plan } = L;
  const { nq, nk } = plan;
  const { S, R, T, WG } = subgroupTilingOf(c);
  const tiles = Math.ceil(nq / (WG * R));
  const total = plan.groups * tiles;
  const names = [...c.inputs, { name: 'dQ', write: true }, { name: 'scratch', write: true }];
  const win = L.qAxes.map((_, i) => `win${i}`);
  const bname = (i: number) => `b${i}`;
  const keyWin = (i: number) => (plan.cross ? '0u' : win[i]);
  const rows = range(R), keys = range(T), ds = range(DH4), slots = range(Math.ceil((T * DH4) / S));
  const bc = bcast(S, DH4), pick = pickOf(DH4);
  // the lane of slot `i` that loaded slice 0 of tile row t holds that row's region and bias codes
  const codeOf = (name: string, t: number) => `subgroupBroadcast(s${Math.floor((t * DH4) / S)}_${name}, ${(t * DH4) % S}u)`;
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(`let row${r} = tile * ${WG * R}u + ${r * WG}u + lid;`,
      `var qoff${r} = qb; var gooff${r} = dob; var dqoff${r} = dqb;`,
      ...place(L.qAxes, `min(row${r}, NQ - 1u)`, `q${r}_`, [[`qoff${r}`, 'q'], [`gooff${r}`, 'dO'], [`dqoff${r}`, 'dQ']], (i) => win[i], masked,
        bias ? { radix: c.radix, query: true } : null),
      ds.map((d) => `var q${r}_${d} = vec4f(0.0); var g${r}_${d} = vec4f(0.0); var A${r}_${d} = vec4f(0.0); var B${r}_${d} = vec4f(0.0);`).join(' '),
      `for (var d = 0u; d < DH4; d++) { let x = ld_q(qoff${r}, d) * ${c.scale}; let y = ld_dO(gooff${r}, d); ` +
        `${ds.map((d) => `q${r}_${d} = select(q${r}_${d}, x, d == ${d}u); g${r}_${d} = select(g${r}_${d}, y, d == ${d}u);`).join(' ')} }`,
      `var m${r} = -3.0e38; var l${r} = 0.0; var a${r} = 0.0;`);
  }
  lines.push(`for (var j0 = 0u; j0 < NK; j0 += ${T}u) {`);
  for (const i of slots) {
    lines.push(`let e${i} = min(lane + ${i * S}u, ${T * DH4 - 1}u); var koff${i} = kb; var voff${i} = vb;`,
      ...place(L.kAxes, `min(j0 + e${i} / DH4, NK - 1u)`, `s${i}_`, [[`koff${i}`, 'k'], [`voff${i}`, 'v']], keyWin, masked,
        bias ? { radix: c.radix, query: false } : null),
      `let kl${i} = ld_k(koff${i}, e${i} % DH4); let vl${i} = ld_v(voff${i}, e${i} % DH4);`);
  }
  // scores and dP per (row, key); broadcast values are consumed as soon as they exist (fewer live registers)
  for (const t of keys) {
    if (masked) lines.push(`let kreg${t} = ${codeOf('region', t)};`);
    if (bias) lines.push(`let kbia${t} = ${codeOf('bias', t)};`);
    lines.push(rows.map((r) => `var x${r}_${t} = 0.0; var y${r}_${t} = 0.0;`).join(' '));
    for (const d of ds) {
      lines.push(`{ let k = ${bc('kl', t, d)}; let v = ${bc('vl', t, d)}; ` +
        `${rows.map((r) => `x${r}_${t} += dot(q${r}_${d}, k); y${r}_${t} += dot(g${r}_${d}, v);`).join(' ')} }`);
    }
  }
  for (const r of rows) {
    for (const t of keys) {
      const conds = [...(nk % T ? [`j0 + ${t}u < NK`] : []), ...(masked ? [`q${r}_region == kreg${t}`] : [])];
      if (bias) lines.push(`x${r}_${t} += ${biasTerm(c, `q${r}_bias`, `kbia${t}`)};`);
      lines.push(`let keep${r}_${t} = ${conds.length ? conds.join(' && ') : 'true'};`);
    }
    lines.push(`let mx${r} = max(m${r}, ${keys.map((t) => `select(-3.0e38, x${r}_${t}, keep${r}_${t})`).reduce((a, x) => `max(${a}, ${x})`)});`,
      `let c${r} = exp(m${r} - mx${r}); m${r} = mx${r};`,
      ...keys.map((t) => `let p${r}_${t} = select(0.0, exp(x${r}_${t} - mx${r}), keep${r}_${t}); let w${r}_${t} = p${r}_${t} * y${r}_${t};`),
      `l${r} = l${r} * c${r} + ${keys.map((t) => `p${r}_${t}`).join(' + ')};`,
      `a${r} = a${r} * c${r} + ${keys.map((t) => `w${r}_${t}`).join(' + ')};`);
  }
  for (const d of ds) {
    lines.push(`{ ${keys.map((t) => `let k${t} = ${bc('kl', t, d)};`).join(' ')} ` + rows.map((r) =>
      `A${r}_${d} = A${r}_${d} * c${r} + ${keys.map((t) => `w${r}_${t} * k${t}`).join(' + ')}; ` +
      `B${r}_${d} = B${r}_${d} * c${r} + ${keys.map((t) => `p${r}_${t} * k${t}`).join(' + ')};`).join(' ') + ' }');
  }
  lines.push(`}`);
  for (const r of rows) {
    lines.push(`if (row${r} < NQ) {`,
      `  let dd = a${r} / l${r}; let f = ${c.scale} / l${r};`,
      `  for (var d = 0u; d < DH4; d++) { st_dQ(dqoff${r}, d, (${pick((d) => `A${r}_${d}`)} - dd * ${pick((d) => `B${r}_${d}`)}) * f); }`,
      `  b_scratch[grp * NQ + row${r}] = vec2f(m${r} + log(l${r}), dd);`,
      `}`);
  }
  const types: Record<string, string> = { scratch: 'vec2f' };
  for (const op of ['q', 'k', 'v', 'dO', 'dQ'] as const) if (vec4Ok(L.views[op], c.dh)) types[op] = 'vec4f';
  const wgsl = [
    'enable subgroups;',
    ...typedDecls(names, types),
    `const NQ = ${nq}u; const NK = ${nk}u; const DH4 = ${DH4}u;`,
    vecLoader('q', L.views.q, c.dh), vecLoader('k', L.views.k, c.dh), vecLoader('v', L.views.v, c.dh), vecLoader('dO', L.views.dO, c.dh),
    vecStorer('dQ', 'dQ', L.views.dQ, c.dh),
    `@compute @workgroup_size(${WG})`,
    GRID_MAIN.replace(') {', ', @builtin(subgroup_invocation_id) lane: u32) {'),
    `let wg = ${GRID_WORKGROUP};`,
    `if (wg >= ${total}u) { return; }`,
    `let tile = wg % ${tiles}u; let grp = wg / ${tiles}u;`,
    ...decode('grp', [...L.batch.map((b) => b.size), plan.heads, ...L.qAxes.map((a) => a.windows)], [...L.batch.map((_, i) => bname(i)), 'head', ...win], 'grem'),
    `let kb = ${baseOf(L, 'k', bname)}; let vb = ${baseOf(L, 'v', bname)};`,
    `let qb = ${baseOf(L, 'q', bname)}; let dob = ${baseOf(L, 'dO', bname)}; let dqb = ${baseOf(L, 'dQ', bname)};`,
    ...lines,
    `}`].join('\n');
  return { key: `attention-backward-rows:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total), features: ['subgroups'] };
}

/** Sizes and names shared by the kernels whose invocations own key rows and broadcast query rows. */
interface KeySide {
  c: Common; S: number; R: number; T: number; win: string[]; bname: (i: number) => string;
  /** vec2f (lse, D) of a query row from the scratch */
  stats: (row: string) => string;
}

/** Key row r's position, offsets (added to the given variables) and registers k (scaled), v. */
function keyRowSetup(k: KeySide, r: number, rowExpr: string, ops: [string, Op][]): string[] {
  const { c } = k;
  const keyWin = (i: number) => (c.L.plan.cross ? '0u' : k.win[i]);
  return [`let row${r} = ${rowExpr};`, ...ops.map(([v]) => `var ${v}${r} = 0u;`),
    ...place(c.L.kAxes, `min(row${r}, NK - 1u)`, `k${r}_`, ops.map(([v, op]) => [`${v}${r}`, op]), keyWin, c.masked,
      c.bias ? { radix: c.radix, query: false } : null)];
}

/** Loads key row r's k (scaled) and v into registers k{r}_{d}, v{r}_{d} (declared by the caller). */
const keyRowLoad = (k: KeySide, r: number, kOff: string, vOff: string) =>
  `for (var d = 0u; d < DH4; d++) { let x = ld_k(${kOff}, d) * ${k.c.scale}; let y = ld_v(${vOff}, d); ` +
  `${range(k.c.DH4).map((d) => `k${r}_${d} = select(k${r}_${d}, x, d == ${d}u); v${r}_${d} = select(v${r}_${d}, y, d == ${d}u);`).join(' ')} }`;

/**
 * One step over query rows i0 .. i0 + T − 1 (qb, dob, qgrp and i0 in scope): the lanes load their q and
 * dO slices and lse and D, and per query t and key row r give p{r}_{t} = P and z{r}_{t} = dS
 * (masked pairs and queries past NQ: 0), followed by `consume(t)`, which may broadcast q and dO again.
 */
function queryStep(k: KeySide, consume: (t: number) => string[]): string[] {
  const { c, S, R, T } = k;
  const { DH4, masked, bias } = c;
  const nq = c.L.plan.nq;
  const rows = range(R), ds = range(DH4), bc = bcast(S, DH4);
  const codeOf = (name: string, t: number) => `subgroupBroadcast(s${Math.floor((t * DH4) / S)}_${name}, ${(t * DH4) % S}u)`;
  const lines: string[] = [];
  for (const i of range(Math.ceil((T * DH4) / S))) {
    lines.push(`let e${i} = min(lane + ${i * S}u, ${T * DH4 - 1}u); var qoff${i} = qb; var gooff${i} = dob;`,
      ...place(c.L.qAxes, `min(i0 + e${i} / DH4, NQ - 1u)`, `s${i}_`, [[`qoff${i}`, 'q'], [`gooff${i}`, 'dO']], (a) => k.win[a], masked,
        bias ? { radix: c.radix, query: true } : null),
      `let ql${i} = ld_q(qoff${i}, e${i} % DH4); let gl${i} = ld_dO(gooff${i}, e${i} % DH4);`);
  }
  for (const i of range(Math.ceil(T / S))) lines.push(`let st${i} = ${k.stats(`qgrp * NQ + min(i0 + min(lane + ${i * S}u, ${T - 1}u), NQ - 1u)`)};`);
  for (const t of range(T)) {
    lines.push(`let ls${t} = subgroupBroadcast(st${Math.floor(t / S)}, ${t % S}u);`);
    if (masked) lines.push(`let qreg${t} = ${codeOf('region', t)};`);
    if (bias) lines.push(`let qbia${t} = ${codeOf('bias', t)};`);
    lines.push(rows.map((r) => `var x${r}_${t} = 0.0; var y${r}_${t} = 0.0;`).join(' '));
    for (const d of ds) {
      lines.push(`{ let q = ${bc('ql', t, d)}; let g = ${bc('gl', t, d)}; ` +
        `${rows.map((r) => `x${r}_${t} += dot(q, k${r}_${d}); y${r}_${t} += dot(g, v${r}_${d});`).join(' ')} }`);
    }
    for (const r of rows) {
      const conds = [...(nq % T ? [`i0 + ${t}u < NQ`] : []), ...(masked ? [`qreg${t} == k${r}_region`] : [])];
      lines.push(`let p${r}_${t} = select(0.0, exp(x${r}_${t}${bias ? ` + ${biasTerm(c, `qbia${t}`, `k${r}_bias`)}` : ''} - ls${t}.x), ` +
        `${conds.length ? conds.join(' && ') : 'true'}); let z${r}_${t} = p${r}_${t} * (y${r}_${t} - ls${t}.y);`);
    }
    lines.push(...consume(t));
  }
  return lines;
}

/**
 * Keys kernel, subgroup variant: each invocation owns R key rows (k, v, dk, dv in registers); per step
 * the lanes load `tile` query rows (q, dO, and their lse and D from the scratch) and broadcast them.
 */
function keysKernelSubgroup(c: Common): KernelSpec {
  const { L, DH4, p } = c;
  const { plan } = L;
  const { nq, nk } = plan;
  const { S, R, T, WG } = subgroupTilingOf(c);
  const kept = L.batch.map((_, i) => i).filter((i) => !L.batch[i].summed);
  const summed = L.batch.map((_, i) => i).filter((i) => L.batch[i].summed);
  const nsum = prod(summed.map((i) => L.batch[i].size));
  const groupSizes = [...kept.map((i) => L.batch[i].size), plan.heads, ...L.qAxes.map((a) => a.windows)];
  const tiles = Math.ceil(nk / (WG * R));
  const total = prod(groupSizes) * tiles;
  const outs = p.sharedKVGrad ? [{ name: 'dKV', write: true }] : [{ name: 'dK', write: true }, { name: 'dV', write: true }];
  const names = [...c.inputs, { name: 'scratch', write: false }, ...outs];
  const k: KeySide = { c, S, R, T, win: L.qAxes.map((_, i) => `win${i}`), bname: (i) => `b${i}`, stats: (row) => `b_scratch[${row}]` };
  const { bname, win } = k;
  const qgroup = flatten([...L.batch.map((_, i) => bname(i)), 'head', ...win], [...L.batch.map((b) => b.size), plan.heads, ...L.qAxes.map((a) => a.windows)]);
  const rows = range(R), ds = range(DH4), bc = bcast(S, DH4), pick = pickOf(DH4);
  const step = queryStep(k, (t) => ds.map((d) => `{ let q = ${bc('ql', t, d)}; let g = ${bc('gl', t, d)}; ` +
    `${rows.map((r) => `dk${r}_${d} += z${r}_${t} * q; dv${r}_${d} += p${r}_${t} * g;`).join(' ')} }`));
  const body = [
    ...decode('cs', summed.map((i) => L.batch[i].size), summed.map(bname), 'crem'),
    `let qgrp = ${qgroup};`,
    `let qb = ${baseOf(L, 'q', bname)}; let dob = ${baseOf(L, 'dO', bname)};`,
    ...rows.map((r) => keyRowLoad(k, r, `${baseOf(L, 'k', bname)} + ktok${r}`, `${baseOf(L, 'v', bname)} + vtok${r}`)),
    `for (var i0 = 0u; i0 < NQ; i0 += ${T}u) {`, ...step, `}`];
  const prologue = rows.flatMap((r) => [
    ...keyRowSetup(k, r, `tile * ${WG * R}u + ${r * WG}u + lid`, [['ktok', 'k'], ['vtok', 'v'], ['dkoff', 'dK'], ['dvoff', 'dV']]),
    `dkoff${r} += ${baseOf(L, 'dK', bname)}; dvoff${r} += ${baseOf(L, 'dV', bname)};`,
    ds.map((d) => `var k${r}_${d} = vec4f(0.0); var v${r}_${d} = vec4f(0.0); var dk${r}_${d} = vec4f(0.0); var dv${r}_${d} = vec4f(0.0);`).join(' ')]);
  const gradOut = p.sharedKVGrad ? 'dKV' : null;
  const types: Record<string, string> = { scratch: 'vec2f' };
  for (const op of ['q', 'k', 'v', 'dO'] as const) if (vec4Ok(L.views[op], c.dh)) types[op] = 'vec4f';
  if (gradOut) { if (vec4Ok(L.views.dK, c.dh) && vec4Ok(L.views.dV, c.dh)) types.dKV = 'vec4f'; } else {
    for (const op of ['dK', 'dV'] as const) if (vec4Ok(L.views[op], c.dh)) types[op] = 'vec4f';
  }
  const store = (op: 'dK' | 'dV') => (types[gradOut ?? op] === 'vec4f' ? vecStorer : storer)(op, gradOut ?? op, L.views[op], c.dh);
  const wgsl = [
    'enable subgroups;',
    ...typedDecls(names, types),
    `const NQ = ${nq}u; const NK = ${nk}u; const DH4 = ${DH4}u;`,
    vecLoader('q', L.views.q, c.dh), vecLoader('k', L.views.k, c.dh), vecLoader('v', L.views.v, c.dh), vecLoader('dO', L.views.dO, c.dh),
    store('dK'), store('dV'),
    `@compute @workgroup_size(${WG})`,
    GRID_MAIN.replace(') {', ', @builtin(subgroup_invocation_id) lane: u32) {'),
    `let wg = ${GRID_WORKGROUP};`,
    `if (wg >= ${total}u) { return; }`,
    `let tile = wg % ${tiles}u;`,
    ...decode(`wg / ${tiles}u`, groupSizes, [...kept.map(bname), 'head', ...win], 'grem'),
    ...prologue,
    // the batch entries that share this key's gradient element (stride 0 in dK/dV), summed in order
    ...(summed.length ? [`for (var cs = 0u; cs < ${nsum}u; cs++) {`, ...body, `}`] : ['{', ...body, '}']),
    ...rows.map((r) => `if (row${r} < NK) { for (var d = 0u; d < DH4; d++) { st_dK(dkoff${r}, d, ${pick((d) => `dk${r}_${d}`)} * ${c.scale}); ` +
      `st_dV(dvoff${r}, d, ${pick((d) => `dv${r}_${d}`)}); } }`),
    `}`].join('\n');
  return { key: `attention-backward-keys:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total), features: ['subgroups'] };
}

/** Workgroup-memory words of the subgroup bias kernel's table, plus one per lane for padded key rows' terms. */
const biasSlots = (L: Layout, S: number) => L.entries + S;

/** Scratch f32 offset of the per-group partial sums of the subgroup bias kernel. */
const partialsAt = (plan: AttentionPlan) => 2 * plan.groups * plan.nq;

/**
 * Bias kernel, subgroup variant, part 1: one subgroup per group (batch entry, head, window) owns a
 * table of the group's sums per relative offset in workgroup memory. Lanes own key rows, query rows are
 * broadcast (as in the keys kernel) and each dS is added to its offset's sum. For one query the
 * subgroup's keys lie at distinct offsets, so its adds hit distinct words (padded rows: a word per
 * lane); a barrier per query orders the adds of different queries. The table goes to the scratch
 * after the (lse, D) rows; part 2 sums the groups in a fixed order.
 */
function biasPartialKernel(c: Common): KernelSpec {
  const { L, DH4 } = c;
  const { plan } = L;
  const { nq, nk } = plan;
  const { S, R, T } = subgroupTilingOf(c);
  const names = [...c.inputs, { name: 'scratch', write: true }];
  const k: KeySide = { c, S, R, T, win: L.qAxes.map((_, i) => `win${i}`), bname: (i) => `b${i}`,
    stats: (row) => `vec2f(b_scratch[(${row}) * 2u], b_scratch[(${row}) * 2u + 1u])` };
  const { bname, win } = k;
  const rows = range(R), ds = range(DH4);
  const E = L.entries;
  const step = queryStep(k, (q) => [
    ...rows.map((r) => `{ let at = select(${E}u + lane, qbia${q} - k${r}_bias, row${r} < NK); tab[at] += z${r}_${q}; }`), 'workgroupBarrier();']);
  const types: Record<string, string> = {};
  for (const op of ['q', 'k', 'v', 'dO'] as const) if (vec4Ok(L.views[op], c.dh)) types[op] = 'vec4f';
  const wgsl = [
    'enable subgroups;',
    ...typedDecls(names, types),
    `const NQ = ${nq}u; const NK = ${nk}u; const DH4 = ${DH4}u;`,
    vecLoader('q', L.views.q, c.dh), vecLoader('k', L.views.k, c.dh), vecLoader('v', L.views.v, c.dh), vecLoader('dO', L.views.dO, c.dh),
    `var<workgroup> tab: array<f32, ${biasSlots(L, S)}>;`,
    `@compute @workgroup_size(${S})`,
    GRID_MAIN.replace(') {', ', @builtin(subgroup_invocation_id) lane: u32) {'),
    `let qgrp = ${GRID_WORKGROUP};`,
    `if (qgrp >= ${plan.groups}u) { return; }`,
    ...decode('qgrp', [...L.batch.map((b) => b.size), plan.heads, ...L.qAxes.map((a) => a.windows)], [...L.batch.map((_, i) => bname(i)), 'head', ...win], 'grem'),
    `for (var e = lid; e < ${biasSlots(L, S)}u; e += ${S}u) { tab[e] = 0.0; }`,
    `workgroupBarrier();`,
    `let qb = ${baseOf(L, 'q', bname)}; let dob = ${baseOf(L, 'dO', bname)}; let kb = ${baseOf(L, 'k', bname)}; let vb = ${baseOf(L, 'v', bname)};`,
    `for (var j0 = 0u; j0 < NK; j0 += ${S * R}u) {`,
    ...rows.flatMap((r) => [
      ...keyRowSetup(k, r, `j0 + ${r * S}u + lane`, [['ktok', 'k'], ['vtok', 'v']]),
      ds.map((d) => `var k${r}_${d} = vec4f(0.0); var v${r}_${d} = vec4f(0.0);`).join(' '),
      keyRowLoad(k, r, `kb + ktok${r}`, `vb + vtok${r}`)]),
    `for (var i0 = 0u; i0 < NQ; i0 += ${T}u) {`, ...step, `}`,
    `}`,
    `for (var e = lid; e < ${E}u; e += ${S}u) { b_scratch[${partialsAt(plan)}u + qgrp * ${E}u + e] = tab[e]; }`,
    `}`].join('\n');
  return { key: `attention-backward-bias:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(plan.groups), features: ['subgroups'] };
}

/** Bias kernel, subgroup variant, part 2: dRelPosBias[entry, head] = Σ over batch entries and windows, in order. */
function biasSumKernel(c: Common): KernelSpec {
  const { L } = c;
  const { plan } = L;
  const drpb = c.p.dRelPosBias!;
  const E = L.entries;
  const names = [{ name: 'scratch', write: false }, { name: 'dRelPosBias', write: true }];
  const WG = 64;
  const total = Math.ceil((E * plan.heads) / WG);
  const nb = prod(L.batch.map((b) => b.size));
  const wgsl = [
    ...decls(names),
    `@compute @workgroup_size(${WG})`,
    GRID_MAIN,
    `let x = (${GRID_WORKGROUP}) * ${WG}u + lid;`,
    `if (x >= ${E * plan.heads}u) { return; }`,
    `let entry = x % ${E}u; let head = x / ${E}u;`,
    `var acc = 0.0;`,
    `for (var b = 0u; b < ${nb}u; b++) { for (var w = 0u; w < ${L.nwin}u; w++) {`,
    `  acc += b_scratch[${partialsAt(plan)}u + ((b * ${plan.heads}u + head) * ${L.nwin}u + w) * ${E}u + entry];`,
    `} }`,
    `b_dRelPosBias[${drpb.offset}u + entry * ${drpb.strides[0]}u + head * ${drpb.strides[1]}u] = acc;`,
    `}`].join('\n');
  return { key: `attention-backward-bias-sum:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total) };
}

// ---------------------------------------------------------------- kernel 3: relative-position bias

/**
 * One workgroup per (table entry, head): its invocations stride over (batch, window, query position)
 * for the query positions whose key at this entry's offset lies in the window, so no pair is visited
 * in vain; a fixed-order tree sum combines them.
 */
function biasKernel(c: Common): KernelSpec {
  const { L, DH4, masked, p } = c;
  const { plan } = L;
  const WG = 64;
  const rpb = p.relPosBias!, drpb = p.dRelPosBias!;
  const axes = L.qAxes;
  const names = [...c.inputs, { name: 'scratch', write: false }, { name: 'dRelPosBias', write: true }];
  const total = L.entries * plan.heads;
  const bname = (i: number) => `b${i}`;
  const win = axes.map((_, i) => `win${i}`);
  const winSizes = axes.map((a) => a.windows);
  const nbatch = prod(L.batch.map((b) => b.size));
  // self-attention: the key axes are the query axes, carrying the k and v strides
  const tok = (px: string, op: Op) => (px === 'q' ? axes : L.kAxes).flatMap((a, i) => (a.st[op] && a.n > 1 ? [`${px}g${i} * ${a.st[op]}u`] : []));
  const offset = (op: Op, px: string) => [baseOf(L, op, bname), ...tok(px, op)].join(' + ');
  const coords = (px: string) => axes.flatMap((a, i) => [
    `let ${px}c${i} = ${a.windows > 1 ? `${win[i]} * ${a.w}u + ` : ''}${px}p${i};`,
    `let ${px}g${i} = ${a.s > 0 ? `(${px}c${i} + ${a.s}u) % ${a.n}u` : `${px}c${i}`};`]);
  const region = (px: string) => axes.map((a, i) =>
    (a.s > 0 ? `select(select(2u, 1u, ${px}c${i} < ${a.n - a.s}u), 0u, ${px}c${i} < ${a.n - a.w}u) * ${3 ** i}u` : '0u')).join(' + ');
  const wgsl = [
    ...decls(names),
    `const NQ = ${plan.nq}u; const DH4 = ${DH4}u; const WG = ${WG}u;`,
    loader('q', L.views.q, c.dh), loader('k', L.views.k, c.dh), loader('v', L.views.v, c.dh), loader('dO', L.views.dO, c.dh),
    workgroupSumWgsl(WG),
    `@compute @workgroup_size(${WG})`,
    GRID_MAIN,
    `let wg = ${GRID_WORKGROUP};`,
    `if (wg >= ${total}u) { return; }`,
    `let head = wg % ${plan.heads}u; let entry = wg / ${plan.heads}u;`,
    ...decode('entry', axes.map((a) => 2 * a.w - 1), axes.map((_, i) => `e${i}`), 'erem'),
    // query minus key offset per axis; the valid query positions are [max(0, o), w + min(0, o))
    ...axes.map((a, i) => `let o${i} = i32(e${i}) - ${a.w - 1}i; let lo${i} = u32(max(o${i}, 0i)); let n${i} = ${a.w}u - u32(abs(o${i}));`),
    `let items = ${nbatch * L.nwin}u * ${axes.map((_, i) => `n${i}`).join(' * ')};`,
    `let tb = b_relPosBias[${rpb.offset}u + entry * ${rpb.strides[0]}u + head * ${rpb.strides[1]}u];`,
    `var acc = 0.0;`,
    `for (var it = lid; it < items; it += WG) {`,
    `  var r = it;`,
    ...axes.map((_, i) => axes.length - 1 - i).map((i) => `  let x${i} = r % n${i}; r = r / n${i};`),
    `  let wf = r % ${L.nwin}u; let bf = r / ${L.nwin}u;`,
    ...decode('wf', winSizes, win, 'wrem').map((l) => `  ${l}`),
    ...decode('bf', L.batch.map((b) => b.size), L.batch.map((_, i) => bname(i)), 'brem').map((l) => `  ${l}`),
    ...axes.map((_, i) => `  let qp${i} = lo${i} + x${i}; let kp${i} = u32(i32(qp${i}) - o${i});`),
    ...coords('q').map((l) => `  ${l}`), ...coords('k').map((l) => `  ${l}`),
    `  let grp = (bf * ${plan.heads}u + head) * ${L.nwin}u + wf;`,
    `  let qrow = ${flatten(axes.map((_, i) => `qp${i}`), axes.map((a) => a.w))};`,
    `  let qoff = ${offset('q', 'q')}; let gooff = ${offset('dO', 'q')};`,
    `  let koff = ${offset('k', 'k')}; let voff = ${offset('v', 'k')};`,
    `  var s = 0.0; var dp = 0.0;`,
    `  for (var d = 0u; d < DH4; d++) { s += dot(ld_q(qoff, d), ld_k(koff, d)); dp += dot(ld_dO(gooff, d), ld_v(voff, d)); }`,
    `  let st = (grp * NQ + qrow) * 2u;`,
    `  let pj = exp(s * ${c.scale} + tb - b_scratch[st]);`,
    `  acc += select(0.0, pj * (dp - b_scratch[st + 1u]), ${masked ? `${region('q')} == ${region('k')}` : 'true'});`,
    `}`,
    `let total = workgroup_sum(acc, lid);`,
    `if (lid == 0u) { b_dRelPosBias[${drpb.offset}u + entry * ${drpb.strides[0]}u + head * ${drpb.strides[1]}u] = total; }`,
    `}`].join('\n');
  return { key: `attention-backward-bias:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total) };
}

/**
 * The backward kernels in dispatch order: rows (dQ, scratch), keys (dK, dV), and bias (dRelPosBias)
 * when requested. Bind one scratch buffer of attentionBackwardScratch(p) elements to all of them.
 */
export function attentionBackwardKernels(p: AttentionBackwardParams): KernelSpec[] {
  const c = commonOf(p);
  const sg = (p.backwardTiling?.subgroupSize ?? 0) > 0;
  const bias = !p.dRelPosBias ? [] : sg && subgroupBiasFits(c.L.entries, p.backwardTiling!.subgroupSize!) ? [biasPartialKernel(c), biasSumKernel(c)] : [biasKernel(c)];
  return [sg ? rowsKernelSubgroup(c) : rowsKernel(c), sg ? keysKernelSubgroup(c) : keysKernel(c), ...bias];
}

// ---------------------------------------------------------------- float64 reference

export interface AttentionBackwardResult {
  /** buffers of each view's extent, NaN where the view does not reach; stride-0 axes summed */
  dQ: Float64Array; dK: Float64Array; dV: Float64Array; dRelPosBias?: Float64Array;
  /** per query row (group * nq + row), as the scratch holds them: log-sum-exp and D = Σ_j P_ij dP_ij */
  lse: Float64Array; D: Float64Array;
  /** per output element, Σ |term| with |dP| and |D| taken as sums of |products|: the scale of its float32 rounding */
  magnitude: { dQ: Float64Array; dK: Float64Array; dV: Float64Array; dRelPosBias?: Float64Array };
}

/**
 * Float64 backward written straight from the definition: per query row the full softmax over the
 * keys it sees, then every term added into its gradient element. Views address elements through
 * full multi-indices (grid order, or [batch axes, context axes] for cross-attention k/v).
 */
export function attentionBackwardReference(p: AttentionBackwardParams, x: AttentionInputs, dO: ArrayLike<number>): AttentionBackwardResult {
  const plan = planAttention(p);
  const { heads, dh, scale, nq, nk } = plan;
  const names = p.grid.map((a) => a.name);
  const tokenAt = p.tokens.map((t) => names.indexOf(t)).sort((a, b) => a - b);
  const batchAt = names.map((_, i) => i).filter((i) => !tokenAt.includes(i));
  const axes = tokenAt.map((i) => ({ n: p.grid[i].size, w: p.window?.[names[i]] ?? p.grid[i].size, s: p.shift?.[names[i]] ?? 0 }));
  const ctx = p.context ?? [];
  const offsetOf = (v: View, idx: number[], head: number, d: number) =>
    idx.reduce((o, c, a) => o + c * v.strides[a], v.offset) + head * v.strides.at(-2)! + d * v.strides.at(-1)!;
  const zeroed = (v: View) => {
    const out = new Float64Array(extent(v)).fill(NaN);
    forEachIndex(v.shape, (idx) => { out[idx.reduce((o, c, a) => o + c * v.strides[a], v.offset)] = 0; });
    return out;
  };
  const dQ = zeroed(p.dQ), dK = zeroed(p.dK), dV = zeroed(p.dV);
  const mQ = zeroed(p.dQ), mK = zeroed(p.dK), mV = zeroed(p.dV);
  const dB = p.dRelPosBias ? zeroed(p.dRelPosBias) : undefined, mB = p.dRelPosBias ? zeroed(p.dRelPosBias) : undefined;
  const lseOut = new Float64Array(plan.groups * nq), dOut = new Float64Array(plan.groups * nq);
  const region = (a: { n: number; w: number; s: number }, c: number) => (a.s === 0 ? 0 : c < a.n - a.w ? 0 : c < a.n - a.s ? 1 : 2);
  const windows = axes.map((a) => a.n / a.w);
  const rel = (qp: number[], kp: number[]) => qp.reduce((r, c, a) => r * (2 * axes[a].w - 1) + (c - kp[a] + axes[a].w - 1), 0);

  for (let g = 0; g < plan.groups; g++) {
    // group order: batch axes (grid order), head, window per token axis
    let rest = g;
    const winIdx = windows.map(() => 0);
    for (let a = axes.length - 1; a >= 0; a--) { winIdx[a] = rest % windows[a]; rest = Math.floor(rest / windows[a]); }
    const head = rest % heads; rest = Math.floor(rest / heads);
    const bIdx = batchAt.map(() => 0);
    for (let i = batchAt.length - 1; i >= 0; i--) { bIdx[i] = rest % p.grid[batchAt[i]].size; rest = Math.floor(rest / p.grid[batchAt[i]].size); }
    /** window position -> in-window coordinates, rolled coordinates, grid multi-index */
    const query = (i: number) => {
      const pos = axes.map(() => 0);
      for (let a = axes.length - 1; a >= 0; a--) { pos[a] = i % axes[a].w; i = Math.floor(i / axes[a].w); }
      const rolled = pos.map((c, a) => winIdx[a] * axes[a].w + c);
      const idx = names.map(() => 0);
      batchAt.forEach((gi, j) => { idx[gi] = bIdx[j]; });
      tokenAt.forEach((gi, a) => { idx[gi] = (rolled[a] + axes[a].s) % axes[a].n; });
      return { pos, rolled, idx };
    };
    const key = (j: number) => {
      if (!plan.cross) return query(j);
      const c = ctx.map(() => 0);
      for (let a = ctx.length - 1; a >= 0; a--) { c[a] = j % ctx[a].size; j = Math.floor(j / ctx[a].size); }
      return { pos: c, rolled: c, idx: [...bIdx, ...c] };
    };
    const keys = Array.from({ length: nk }, (_, j) => key(j));
    for (let i = 0; i < nq; i++) {
      const qi = query(i);
      const qAt = (d: number) => x.q[offsetOf(p.q, qi.idx, head, d)];
      const gAt = (d: number) => dO[offsetOf(p.dO, qi.idx, head, d)];
      const seen = keys.map((kj) => !plan.masked || kj.rolled.every((c, a) => region(axes[a], c) === region(axes[a], qi.rolled[a])));
      const s = keys.map((kj, j) => {
        if (!seen[j]) return -Infinity;
        let acc = 0;
        for (let d = 0; d < dh; d++) acc += qAt(d) * x.k[offsetOf(p.k, kj.idx, head, d)];
        acc *= scale;
        if (p.relPosBias) acc += x.relPosBias![p.relPosBias.offset + rel(qi.pos, kj.pos) * p.relPosBias.strides[0] + head * p.relPosBias.strides[1]];
        return acc;
      });
      const max = Math.max(...s);
      const lse = max + Math.log(s.reduce((t, sj) => t + Math.exp(sj - max), 0));
      const P = s.map((sj) => Math.exp(sj - lse));
      const dP = keys.map((kj) => { let t = 0; for (let d = 0; d < dh; d++) t += gAt(d) * x.v[offsetOf(p.v, kj.idx, head, d)]; return t; });
      const dPabs = keys.map((kj) => { let t = 0; for (let d = 0; d < dh; d++) t += Math.abs(gAt(d) * x.v[offsetOf(p.v, kj.idx, head, d)]); return t; });
      const D = P.reduce((t, pj, j) => t + pj * dP[j], 0);
      const Dabs = P.reduce((t, pj, j) => t + pj * dPabs[j], 0);
      lseOut[g * nq + i] = lse; dOut[g * nq + i] = D;
      keys.forEach((kj, j) => {
        if (!seen[j]) return;
        const ds = P[j] * (dP[j] - D), dsAbs = P[j] * (dPabs[j] + Dabs);
        for (let d = 0; d < dh; d++) {
          const kd = x.k[offsetOf(p.k, kj.idx, head, d)];
          const oq = offsetOf(p.dQ, qi.idx, head, d), ok = offsetOf(p.dK, kj.idx, head, d), ov = offsetOf(p.dV, kj.idx, head, d);
          dQ[oq] += scale * ds * kd; mQ[oq] += scale * dsAbs * Math.abs(kd);
          dK[ok] += scale * ds * qAt(d); mK[ok] += scale * dsAbs * Math.abs(qAt(d));
          dV[ov] += P[j] * gAt(d); mV[ov] += P[j] * Math.abs(gAt(d));
        }
        if (dB && p.dRelPosBias) {
          const ob = p.dRelPosBias.offset + rel(qi.pos, kj.pos) * p.dRelPosBias.strides[0] + head * p.dRelPosBias.strides[1];
          dB[ob] += ds; mB![ob] += dsAbs;
        }
      });
    }
  }
  return { dQ, dK, dV, ...(dB ? { dRelPosBias: dB } : {}), lse: lseOut, D: dOut,
    magnitude: { dQ: mQ, dK: mK, dV: mV, ...(mB ? { dRelPosBias: mB } : {}) } };
}
