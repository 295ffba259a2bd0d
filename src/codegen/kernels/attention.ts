/**
 * Attention in one kernel: online softmax over keys, the score matrix is never written.
 *
 * Parameters (AttentionParams):
 * - grid: the query grid as named axes, outermost first, e.g. b=2, t=16, h=56, w=56.
 * - tokens: names of the grid axes that form the token set; every other grid axis is a batch axis.
 *   Full space-time: tokens t,h,w. Spatial: tokens h,w (t is batch). Temporal: tokens t (h,w are batch).
 * - heads, headDim: q, k, v and o carry two trailing axes [heads, headDim].
 * - q, o: views of shape [...grid sizes, heads, headDim] (any strides: packed qkv, permuted layouts).
 * - k, v: self-attention: same shape as q. Cross-attention: [...batch axes (grid order), ...context sizes,
 *   heads, headDim]; a batch axis the context lacks is given stride 0.
 * - context: the key token axes of cross-attention (e.g. l=77 of a text encoder); omit for self-attention.
 * - window: window size per token axis (an absent axis is one window); must divide the axis.
 * - shift: cyclic shift per token axis (Swin shifted windows, 0 <= shift < window). The grid is rolled by
 *   -shift, partitioned into windows, and the output lands at the original positions; keys from a different
 *   original region than the query are excluded exactly (Swin adds -100 to their logits instead).
 * - relPosBias: view [prod over token axes of (2*window-1), heads], indexed by query-minus-key offsets in
 *   window coordinates, first token axis most significant (Swin's relative_position_index).
 * - biasWindow: the window per token axis the table was made for, at least `window` (Video Swin keeps
 *   its configured table when a window is clamped to a smaller axis). A position's in-window index,
 *   row-major over `window`, is read as an index into that window (relative_position_index[:N, :N]).
 * - causal: a query sees the keys at its own token index and before (row-major over the token axes in
 *   grid order); self-attention without windows only.
 * - keyMask: f32 over [...batch axes (grid order), ...key token axes] (stride 0 where broadcast); a key
 *   whose value is 0 is not seen. A row whose keys are all masked writes o = 0. No windows.
 * - scale: defaults to 1/sqrt(headDim).
 * - tiling (AttentionTiling; attentionTilingFor picks one per adapter): a workgroup covers query rows of
 *   one window; rowsPerInvocation rows share each K/V value; kvTile keys per step. subgroupSize selects
 *   the subgroup-broadcast variant (CPU adapters), otherwise kvTile > 0 stages K/V in workgroup memory.
 * Bindings in order: q, k, v, [relPosBias], o. The same buffer may be bound to q, k and v.
 */
import { gridFor, type KernelSpec } from './kernel.ts';
import { contiguous, extent, type View } from './view.ts';

export interface Axis { name: string; size: number }
export interface AttentionTiling {
  workgroupSize?: number; rowsPerInvocation?: number;
  /** keys per step: broadcast per subgroup, or staged in workgroup memory (0: per key from global memory) */
  kvTile?: number;
  /** > 0 selects the subgroup variant; correct where every subgroup has at least this many invocations */
  subgroupSize?: number;
}

/**
 * Tiling for an adapter: a fixed subgroup size (CPU adapters run subgroups as SIMD lanes) selects the
 * subgroup variant; otherwise K/V tiles in workgroup memory.
 */
export function attentionTilingFor(adapter: { subgroupMinSize?: number; subgroupMaxSize?: number }, hasSubgroups = true): AttentionTiling {
  const s = adapter.subgroupMinSize ?? 0;
  if (hasSubgroups && s > 0 && s === adapter.subgroupMaxSize && s <= 16) return { subgroupSize: s };
  return { rowsPerInvocation: 1, kvTile: 32, workgroupSize: 64 };
}

export interface AttentionParams {
  grid: Axis[];
  tokens: string[];
  heads: number;
  headDim: number;
  q: View; k: View; v: View; o: View;
  context?: Axis[];
  window?: Record<string, number>;
  shift?: Record<string, number>;
  relPosBias?: View;
  biasWindow?: Record<string, number>;
  causal?: boolean;
  keyMask?: View;
  scale?: number;
  tiling?: AttentionTiling;
}

/** One token axis after validation: n positions in windows of w, rolled by s; strides of each operand. */
interface TokenAxis { name: string; n: number; w: number; s: number; bw: number; windows: number; qs: number; os: number; ks: number; vs: number; ms: number }

/** Compile-time index map shared by the kernel, the float64 reference and (later) the backward pass. */
export interface AttentionPlan {
  batch: { size: number; q: number; k: number; v: number; o: number }[];
  queryAxes: TokenAxis[];
  /** key axes: the query token axes (self) or the context axes (cross) */
  keyAxes: TokenAxis[];
  cross: boolean;
  masked: boolean;
  /** key index <= query index (one window over the whole grid) */
  causal: boolean;
  /** key mask: its offset and batch strides (the key axes' are their `ms`), or null */
  keyMask: { offset: number; batch: number[] } | null;
  heads: number; dh: number; scale: number;
  /** head strides of q, k, v, o */
  hs: { q: number; k: number; v: number; o: number };
  nq: number; nk: number; groups: number;
  /** mixed radix of the relative-position table over query axes */
  radix: number[];
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

function fail(msg: string): never { throw new Error(`attention: ${msg}`); }

function checkShape(name: string, v: View, shape: number[]) {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    fail(`${name} has shape [${v.shape}] but [${shape}] is required`);
  }
}

export function planAttention(p: AttentionParams): AttentionPlan {
  const names = p.grid.map((a) => a.name);
  for (const t of p.tokens) if (!names.includes(t)) fail(`token axis '${t}' is not a grid axis (${names.join(', ')})`);
  if (p.tokens.length === 0) fail('at least one token axis is required');
  for (const key of [...Object.keys(p.window ?? {}), ...Object.keys(p.shift ?? {}), ...Object.keys(p.biasWindow ?? {})]) {
    if (!p.tokens.includes(key)) fail(`window/shift given for '${key}', which is not a token axis`);
  }
  const tail = [p.heads, p.headDim];
  const gridShape = p.grid.map((a) => a.size);
  checkShape('q', p.q, [...gridShape, ...tail]);
  checkShape('o', p.o, [...gridShape, ...tail]);
  const batchIdx = p.grid.map((a, i) => (p.tokens.includes(a.name) ? -1 : i)).filter((i) => i >= 0);
  const cross = p.context !== undefined;
  const kvShape = cross ? [...batchIdx.map((i) => gridShape[i]), ...p.context!.map((a) => a.size), ...tail] : [...gridShape, ...tail];
  checkShape('k', p.k, kvShape);
  checkShape('v', p.v, kvShape);
  if (cross && (p.window || p.shift || p.relPosBias)) fail('windows, shifts and relative-position bias apply to self-attention only');
  if (cross && p.context!.length === 0) fail('context needs at least one axis');
  const kvBatch = (i: number) => (cross ? batchIdx.indexOf(i) : i);
  const batch = batchIdx.map((i) => ({
    size: gridShape[i], q: p.q.strides[i], o: p.o.strides[i], k: p.k.strides[kvBatch(i)], v: p.v.strides[kvBatch(i)],
  }));
  const queryAxes: TokenAxis[] = [];
  p.grid.forEach((a, i) => {
    if (!p.tokens.includes(a.name)) return;
    const w = p.window?.[a.name] ?? a.size;
    const s = p.shift?.[a.name] ?? 0;
    if (!Number.isInteger(w) || w < 1 || a.size % w !== 0) fail(`window ${w} does not divide axis '${a.name}' of size ${a.size}`);
    if (!Number.isInteger(s) || s < 0 || s >= w) fail(`shift ${s} on axis '${a.name}' must be in [0, ${w})`);
    const bw = p.biasWindow?.[a.name] ?? w;
    if (!Number.isInteger(bw) || bw < w) fail(`bias window ${bw} on axis '${a.name}' must be an integer of at least the window ${w}`);
    queryAxes.push({ name: a.name, n: a.size, w, s, bw, windows: a.size / w,
      qs: p.q.strides[i], os: p.o.strides[i], ks: cross ? 0 : p.k.strides[i], vs: cross ? 0 : p.v.strides[i], ms: cross ? 0 : p.keyMask?.strides[i] ?? 0 });
  });
  const nb = batchIdx.length;
  const keyAxes = cross
    ? p.context!.map((a, j) => ({ name: a.name, n: a.size, w: a.size, s: 0, bw: a.size, windows: 1, qs: 0, os: 0,
      ks: p.k.strides[nb + j], vs: p.v.strides[nb + j], ms: p.keyMask?.strides[nb + j] ?? 0 }))
    : queryAxes;
  const radix = queryAxes.map((_, i) => prod(queryAxes.slice(i + 1).map((a) => 2 * a.bw - 1)));
  if (p.relPosBias) checkShape('relPosBias', p.relPosBias, [prod(queryAxes.map((a) => 2 * a.bw - 1)), p.heads]);
  const r = p.q.shape.length;
  const kr = p.k.shape.length;
  const causal = p.causal === true;
  if (causal && (cross || queryAxes.some((a) => a.windows > 1))) fail('causal applies to self-attention without windows');
  if (p.keyMask) {
    checkShape('keyMask', p.keyMask, kvShape.slice(0, -2));
    if (queryAxes.some((a) => a.windows > 1)) fail('a key mask applies without windows');
  }
  const keyMask = p.keyMask ? { offset: p.keyMask.offset, batch: batchIdx.map((i) => p.keyMask!.strides[kvBatch(i)]) } : null;
  return {
    batch, queryAxes, keyAxes, cross, masked: queryAxes.some((a) => a.s > 0), causal, keyMask,
    heads: p.heads, dh: p.headDim, scale: p.scale ?? 1 / Math.sqrt(p.headDim),
    hs: { q: p.q.strides[r - 2], o: p.o.strides[r - 2], k: p.k.strides[kr - 2], v: p.v.strides[kr - 2] },
    nq: prod(queryAxes.map((a) => a.w)), nk: prod(keyAxes.map((a) => a.w)),
    groups: prod(batch.map((b) => b.size)) * p.heads * prod(queryAxes.map((a) => a.windows)),
    radix,
  };
}

/** Swin's region label of a rolled coordinate: [0, n-w), [n-w, n-s), [n-s, n). */
const region = (a: TokenAxis, c: number) => (c < a.n - a.w ? 0 : c < a.n - a.s ? 1 : 2);

/** Group order (outermost first): batch axes, head, window index per token axis. */
function decodeGroup(plan: AttentionPlan, g: number) {
  const win = plan.queryAxes.map(() => 0);
  for (let i = plan.queryAxes.length - 1; i >= 0; i--) { win[i] = g % plan.queryAxes[i].windows; g = Math.floor(g / plan.queryAxes[i].windows); }
  const head = g % plan.heads; g = Math.floor(g / plan.heads);
  const b = plan.batch.map(() => 0);
  for (let i = plan.batch.length - 1; i >= 0; i--) { b[i] = g % plan.batch[i].size; g = Math.floor(g / plan.batch[i].size); }
  return { b, head, win };
}

/** Position `i` of a window: in-window coordinates, rolled grid coordinates, original coordinates. */
function windowPosition(axes: TokenAxis[], win: number[], i: number) {
  const pos = axes.map(() => 0), bpos = axes.map(() => 0);
  for (let a = axes.length - 1, r = i; a >= 0; a--) { bpos[a] = r % axes[a].bw; r = Math.floor(r / axes[a].bw); }
  for (let a = axes.length - 1; a >= 0; a--) { pos[a] = i % axes[a].w; i = Math.floor(i / axes[a].w); }
  const rolled = pos.map((x, a) => win[a] * axes[a].w + x);
  const orig = rolled.map((c, a) => (c + axes[a].s) % axes[a].n);
  return { pos, bpos, rolled, orig };
}

export interface AttentionInputs { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number>; relPosBias?: ArrayLike<number>; keyMask?: ArrayLike<number> }

/**
 * Float64 reference. Returns o (a buffer of o's extent, NaN where the view does not reach) and the
 * log-sum-exp of every query row (index group * nq + row), which a backward pass needs; a row whose
 * keys are all masked has o = 0 and lse 0.
 */
export function attentionReference(p: AttentionParams, x: AttentionInputs): { o: Float64Array; lse: Float64Array } {
  const plan = planAttention(p);
  const o = new Float64Array(extent(p.o)).fill(NaN);
  const lse = new Float64Array(plan.groups * plan.nq);
  const { dh, hs } = plan;
  const scores = new Float64Array(plan.nk);
  for (let g = 0; g < plan.groups; g++) {
    const { b, head, win } = decodeGroup(plan, g);
    const base = (op: 'q' | 'k' | 'v' | 'o') => p[op].offset + head * hs[op] + plan.batch.reduce((s, ax, i) => s + b[i] * ax[op], 0);
    const keyWin = plan.cross ? plan.keyAxes.map(() => 0) : win;
    for (let i = 0; i < plan.nq; i++) {
      const qp = windowPosition(plan.queryAxes, win, i);
      const qo = base('q') + qp.orig.reduce((s, c, a) => s + c * plan.queryAxes[a].qs, 0);
      let max = -Infinity;
      for (let j = 0; j < plan.nk; j++) {
        const kp = windowPosition(plan.keyAxes, keyWin, j);
        const excluded = (plan.masked && kp.rolled.some((c, a) => region(plan.keyAxes[a], c) !== region(plan.queryAxes[a], qp.rolled[a])))
          || (plan.causal && j > i)
          || (plan.keyMask !== null && x.keyMask![plan.keyMask.offset + plan.batch.reduce((s, _, a) => s + b[a] * plan.keyMask!.batch[a], 0)
            + kp.orig.reduce((s, c, a) => s + c * plan.keyAxes[a].ms, 0)] === 0);
        if (excluded) { scores[j] = -Infinity; continue; }
        const ko = base('k') + kp.orig.reduce((s, c, a) => s + c * plan.keyAxes[a].ks, 0);
        let s = 0;
        for (let d = 0; d < dh; d++) s += x.q[qo + d * p.q.strides.at(-1)!] * x.k[ko + d * p.k.strides.at(-1)!];
        s *= plan.scale;
        if (p.relPosBias) {
          const rel = qp.bpos.reduce((t, c, a) => t + (c - kp.bpos[a] + plan.queryAxes[a].bw - 1) * plan.radix[a], 0);
          s += x.relPosBias![p.relPosBias.offset + rel * p.relPosBias.strides[0] + head * p.relPosBias.strides[1]];
        }
        scores[j] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let j = 0; j < plan.nk; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
      lse[g * plan.nq + i] = max + Math.log(sum);
      const oo = base('o') + qp.orig.reduce((s, c, a) => s + c * plan.queryAxes[a].os, 0);
      if (max === -Infinity) { // every key masked
        lse[g * plan.nq + i] = 0;
        for (let d = 0; d < dh; d++) o[oo + d * p.o.strides.at(-1)!] = 0;
        continue;
      }
      for (let d = 0; d < dh; d++) {
        let acc = 0;
        for (let j = 0; j < plan.nk; j++) {
          if (scores[j] === 0) continue;
          const kp = windowPosition(plan.keyAxes, keyWin, j);
          const vo = base('v') + kp.orig.reduce((s, c, a) => s + c * plan.keyAxes[a].vs, 0);
          acc += scores[j] * x.v[vo + d * p.v.strides.at(-1)!];
        }
        o[oo + d * p.o.strides.at(-1)!] = acc / sum;
      }
    }
  }
  return { o, lse };
}

/**
 * Self-attention over the packed output of a qkv linear, [...grid, 3, heads, headDim] in one buffer
 * (bind it as q, k and v), writing o as contiguous [...grid, heads, headDim].
 */
export function packedSelfAttention(o: { grid: Axis[]; tokens: string[]; heads: number; headDim: number }
  & Partial<Pick<AttentionParams, 'window' | 'shift' | 'scale' | 'tiling' | 'relPosBias'>>): AttentionParams {
  const gridShape = o.grid.map((a) => a.size);
  const qkv = contiguous([...gridShape, 3, o.heads, o.headDim]);
  const n = gridShape.length;
  const strides = [...qkv.strides.slice(0, n), ...qkv.strides.slice(n + 1)]; // skip the q|k|v axis
  const part = (i: number): View => ({ shape: [...gridShape, o.heads, o.headDim], strides, offset: i * qkv.strides[n] });
  return { ...o, q: part(0), k: part(1), v: part(2), o: contiguous([...gridShape, o.heads, o.headDim]) };
}

// ---------------------------------------------------------------- WGSL generation

/** vec4 access needs unit stride along headDim and 16-byte aligned rows. */
const vec4Ok = (v: View, dh: number) => dh % 4 === 0 && v.strides.at(-1) === 1 && v.offset % 4 === 0 && v.strides.slice(0, -1).every((s) => s % 4 === 0);

function loader(fn: string, buf: string, v: View, dh: number): string {
  if (vec4Ok(v, dh)) return `fn ${fn}(base: u32, i: u32) -> vec4f { return ${buf}[(base >> 2u) + i]; }`;
  const s = v.strides.at(-1)!;
  const lane = (c: number) => (c === 0 || dh % 4 === 0 ? `${buf}[at + ${c * s}u]` : `select(0.0, ${buf}[at + ${c * s}u], i * 4u + ${c}u < ${dh}u)`);
  return `fn ${fn}(base: u32, i: u32) -> vec4f { let at = base + i * ${4 * s}u; return vec4f(${[0, 1, 2, 3].map(lane).join(', ')}); }`;
}

function storer(v: View, dh: number): string {
  if (vec4Ok(v, dh)) return `fn store_o(base: u32, i: u32, x: vec4f) { o[(base >> 2u) + i] = x; }`;
  const s = v.strides.at(-1)!;
  const lanes = [0, 1, 2, 3].map((c) => {
    const st = `o[b + ${c * s}u] = x[${c}];`;
    return c === 0 || dh % 4 === 0 ? st : `if (i * 4u + ${c}u < ${dh}u) { ${st} }`;
  });
  return `fn store_o(base: u32, i: u32, x: vec4f) { let b = base + i * ${4 * s}u; ${lanes.join(' ')} }`;
}

/** Statements decoding `value` over mixed radix `sizes` (last fastest) into `let names[i]`. */
function decode(value: string, sizes: number[], names: string[], tmp: string): string[] {
  const lines = [`var ${tmp} = ${value};`];
  for (let i = sizes.length - 1; i >= 0; i--) {
    if (sizes[i] === 1) { lines.push(`let ${names[i]} = 0u;`); continue; }
    lines.push(i === 0 ? `let ${names[i]} = ${tmp};` : `let ${names[i]} = ${tmp} % ${sizes[i]}u; ${tmp} = ${tmp} / ${sizes[i]}u;`);
  }
  return lines;
}

/** Statements placing window position `idx` of axes: offsets into the given operands, region code, bias code. */
function placeToken(axes: TokenAxis[], idx: string, px: string, ops: [string, 'qs' | 'os' | 'ks' | 'vs' | 'ms'][], winVar: (a: number) => string,
  masked: boolean, radix: number[] | null, biasSign: number): string[] {
  const pos = axes.map((_, a) => `${px}p${a}`);
  const lines = decode(idx, axes.map((a) => a.w), pos, `${px}rem`);
  axes.forEach((a, i) => {
    lines.push(`let ${px}c${i} = ${a.windows > 1 ? `${winVar(i)} * ${a.w}u + ` : ''}${pos[i]};`);
    lines.push(`let ${px}g${i} = ${a.s > 0 ? `(${px}c${i} + ${a.s}u) % ${a.n}u` : `${px}c${i}`};`);
  });
  for (const [out, s] of ops) lines.push(`${out} += ${axes.map((a, i) => `${px}g${i} * ${a[s]}u`).join(' + ')};`);
  if (masked) {
    const reg = (a: TokenAxis, i: number) => (a.s > 0 ? `select(select(2u, 1u, ${px}c${i} < ${a.n - a.s}u), 0u, ${px}c${i} < ${a.n - a.w}u) * ${3 ** i}u` : '0u');
    lines.push(`let ${px}region = ${axes.map(reg).join(' + ')};`);
  }
  if (radix) {
    // with a larger bias window, the in-window index is decoded again over it
    const bpos = axes.some((a) => a.bw !== a.w) ? axes.map((_, a) => `${px}bp${a}`) : pos;
    if (bpos !== pos) lines.push(...decode(idx, axes.map((a) => a.bw), bpos, `${px}brem`));
    const term = (a: TokenAxis, i: number) => `${biasSign > 0 ? `(${bpos[i]} + ${a.bw - 1}u)` : bpos[i]} * ${radix[i]}u`;
    lines.push(`let ${px}bias = ${axes.map(term).join(' + ')};`);
  }
  return lines;
}

export function attentionKernel(p: AttentionParams): KernelSpec {
  const plan = planAttention(p);
  const { dh, nq } = plan;
  const dh4 = Math.ceil(dh / 4);
  const t = p.tiling ?? {};
  const S = t.subgroupSize ?? 0;
  // LLVM's compile time on CPU adapters grows steeply with live registers (rows x head dim): cap it.
  const R = t.rowsPerInvocation ?? (S ? Math.max(1, Math.min(4, Math.floor(16 / dh4))) : 1);
  const KVT = t.kvTile ?? (S ? 1 : 0);
  const WG = t.workgroupSize ?? pickWorkgroupSize(Math.ceil(nq / R), S || 8);
  const ok = (x: number, min: number) => Number.isInteger(x) && x >= min;
  if (!ok(R, 1) || !ok(WG, 1) || !ok(KVT, 0) || !ok(S, 0)) fail('tiling values must be positive integers (kvTile and subgroupSize may be 0)');
  if (S && (KVT === 0 || WG % S !== 0)) fail(`the subgroup variant needs kvTile >= 1 and a workgroup size that is a multiple of ${S}`);
  const tiles = Math.ceil(nq / (WG * R));
  const total = plan.groups * tiles;
  const dispatch = gridFor(total);
  const bias = p.relPosBias;
  const bindings = [{ name: 'q', access: 'read' as const }, { name: 'k', access: 'read' as const }, { name: 'v', access: 'read' as const },
    ...(bias ? [{ name: 'rpb', access: 'read' as const }] : []), ...(plan.keyMask ? [{ name: 'km', access: 'read' as const }] : []),
    { name: 'o', access: 'read_write' as const }];
  const views: Record<string, View> = { q: p.q, k: p.k, v: p.v, o: p.o };
  const decls = bindings.map((b, i) =>
    `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${views[b.name] && vec4Ok(views[b.name], dh) ? 'vec4f' : 'f32'}>;`);
  const qa = plan.queryAxes;
  const winNames = qa.map((_, i) => `win${i}`);
  const base = (op: 'q' | 'k' | 'v' | 'o') => [`${p[op].offset}u`, `head * ${plan.hs[op]}u`, ...plan.batch.map((b, i) => `b${i} * ${b[op]}u`)].join(' + ');
  const ctx: BodyContext = {
    plan, R, KVT, WG, S, bias, radix: bias ? plan.radix : null, winNames,
    keyWin: (i) => (plan.cross ? '0u' : winNames[i]),
    row: (r) => `tile * ${WG * R}u + ${r} * WG + lid`,
    scale: plan.scale.toPrecision(9),
  };
  const wgsl = [S ? 'enable subgroups;' : '', ...decls,
    `const NQ = ${nq}u; const NK = ${plan.nk}u; const DH4 = ${dh4}u; const R = ${R}u; const WG = ${WG}u;`,
    `const TILES = ${tiles}u; const TOTAL = ${total}u;`,
    loader('load_q', 'q', p.q, dh), loader('load_k', 'k', p.k, dh), loader('load_v', 'v', p.v, dh),
    storer(p.o, dh),
    KVT && !S ? `var<workgroup> kt: array<vec4f, ${KVT * dh4}>;\nvar<workgroup> vt: array<vec4f, ${KVT * dh4}>;` : '',
    KVT && !S && plan.masked ? `var<workgroup> kreg: array<u32, ${KVT}>;` : '',
    KVT && !S && bias ? `var<workgroup> kbia: array<u32, ${KVT}>;` : '',
    KVT && !S && plan.keyMask ? `var<workgroup> kkeep: array<f32, ${KVT}>;` : '',
    `@compute @workgroup_size(${WG})`,
    `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32${S ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {`,
    `let wg = wid.x + (wid.y + wid.z * ${dispatch[1]}u) * ${dispatch[0]}u;`,
    `if (wg >= TOTAL) { return; }`,
    `let tile = wg % TILES;`,
    ...decode('wg / TILES', [...plan.batch.map((b) => b.size), plan.heads, ...qa.map((a) => a.windows)],
      [...plan.batch.map((_, i) => `b${i}`), 'head', ...winNames], 'grem'),
    `let qb = ${base('q')}; let kb = ${base('k')}; let vb = ${base('v')}; let ob = ${base('o')};`,
    plan.keyMask ? `let mb = ${[`${plan.keyMask.offset}u`, ...plan.keyMask.batch.map((st, i) => `b${i} * ${st}u`)].join(' + ')};` : '',
    ...(S ? subgroupBody(ctx) : perKeyBody(ctx)),
    `}`].filter((x) => x !== '').join('\n');
  return { key: `attention:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings, dispatch, ...(S ? { features: ['subgroups'] } : {}) };
}

interface BodyContext {
  plan: AttentionPlan; R: number; KVT: number; WG: number; S: number; bias?: View; radix: number[] | null;
  winNames: string[]; keyWin: (axis: number) => string; row: (r: string) => string; scale: string;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** rpb element for a row's and a key's bias codes */
const biasTerm = (c: BodyContext, rowCode: string, keyCode: string) =>
  c.bias ? ` + rpb[${c.bias.offset}u + (${rowCode} - ${keyCode}) * ${c.bias.strides[0]}u + head * ${c.bias.strides[1]}u]` : '';

/**
 * Subgroup variant (CPU adapters, which run a subgroup as SIMD lanes): lane i loads distinct vec4
 * slices of the next kvTile keys and subgroupBroadcast hands each slice to all lanes, so no load is
 * repeated per lane. Rows, tile keys and head dim are unrolled into scalar names (nothing indexed
 * dynamically); prologue and epilogue walk the head dim in a loop through select chains to keep the
 * number of memory instructions, and so compile time, small. One rescale per tile.
 */
function subgroupBody(c: BodyContext): string[] {
  const { plan, R, KVT: T, S } = c;
  const rows = range(R), keys = range(T), ds = range(Math.ceil(plan.dh / 4));
  const DH4 = ds.length;
  const slots = range(Math.ceil((T * DH4) / S));
  const pick = (name: (d: number) => string) => ds.slice(1).reduce((acc, d) => `select(${acc}, ${name(d)}, d == ${d}u)`, name(0));
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(`var m${r} = -3.0e38; var l${r} = 0.0; var qoff${r} = qb; var ooff${r} = ob;`,
      `let valid${r} = ${c.row(`${r}u`)} < NQ;`,
      ...placeToken(plan.queryAxes, `min(${c.row(`${r}u`)}, NQ - 1u)`, `q${r}_`, [[`qoff${r}`, 'qs'], [`ooff${r}`, 'os']],
        (i) => c.winNames[i], plan.masked, c.radix, 1),
      ds.map((d) => `var q${r}_${d} = vec4f(0.0); var a${r}_${d} = vec4f(0.0);`).join(' '),
      `for (var d = 0u; d < DH4; d++) { let x = load_q(qoff${r}, d) * ${c.scale}; ${ds.map((d) => `q${r}_${d} = select(q${r}_${d}, x, d == ${d}u);`).join(' ')} }`);
  }
  lines.push(`for (var j0 = 0u; j0 < NK; j0 += ${T}u) {`);
  for (const i of slots) {
    lines.push(`let e${i} = min(lane + ${i * S}u, ${T * DH4 - 1}u); var koff${i} = kb; var voff${i} = vb;`,
      ...placeToken(plan.keyAxes, `min(j0 + e${i} / DH4, NK - 1u)`, `s${i}_`, [[`koff${i}`, 'ks'], [`voff${i}`, 'vs']], c.keyWin, false, null, -1),
      `let kl${i} = load_k(koff${i}, e${i} % DH4); let vl${i} = load_v(voff${i}, e${i} % DH4);`);
  }
  const bcast = (src: string, t: number, d: number) => `subgroupBroadcast(${src}${Math.floor((t * DH4 + d) / S)}, ${(t * DH4 + d) % S}u)`;
  // Broadcast values are consumed as soon as they exist: fewer live registers, much faster LLVM compile.
  for (const t of keys) {
    if (plan.keyMask) lines.push(`var t${t}_moff = mb;`);
    if (plan.masked || c.bias || plan.keyMask) {
      lines.push(...placeToken(plan.keyAxes, `min(j0 + ${t}u, NK - 1u)`, `t${t}_`, plan.keyMask ? [[`t${t}_moff`, 'ms']] : [], c.keyWin, plan.masked, c.radix, -1));
    }
    lines.push(rows.map((r) => `var x${r}_${t} = 0.0;`).join(' '));
    for (const d of ds) lines.push(`{ let k = ${bcast('kl', t, d)}; ${rows.map((r) => `x${r}_${t} += dot(q${r}_${d}, k);`).join(' ')} }`);
  }
  for (const r of rows) {
    for (const t of keys) {
      const conds = [...(plan.nk % T ? [`j0 + ${t}u < NK`] : []), ...(plan.masked ? [`q${r}_region == t${t}_region`] : []),
        ...(plan.causal ? [`j0 + ${t}u <= ${c.row(`${r}u`)}`] : []), ...(plan.keyMask ? [`km[t${t}_moff] != 0.0`] : [])];
      if (c.bias) lines.push(`x${r}_${t} = x${r}_${t}${biasTerm(c, `q${r}_bias`, `t${t}_bias`)};`);
      lines.push(`let keep${r}_${t} = ${conds.length ? conds.join(' && ') : 'true'};`);
    }
    lines.push(`let mx${r} = max(m${r}, ${keys.map((t) => `select(-3.0e38, x${r}_${t}, keep${r}_${t})`).reduce((a, x) => `max(${a}, ${x})`)});`,
      `let c${r} = exp(m${r} - mx${r}); m${r} = mx${r};`,
      ...keys.map((t) => `let p${r}_${t} = select(0.0, exp(x${r}_${t} - mx${r}), keep${r}_${t});`),
      `l${r} = l${r} * c${r} + ${keys.map((t) => `p${r}_${t}`).join(' + ')};`);
  }
  for (const d of ds) {
    lines.push(`{ ${keys.map((t) => `let v${t} = ${bcast('vl', t, d)};`).join(' ')} ` +
      rows.map((r) => `a${r}_${d} = a${r}_${d} * c${r} + ${keys.map((t) => `p${r}_${t} * v${t}`).join(' + ')};`).join(' ') + ' }');
  }
  lines.push(`}`);
  for (const r of rows) {
    lines.push(`if (valid${r}) { let inv = ${empty(plan, `l${r}`)}; for (var d = 0u; d < DH4; d++) { store_o(ooff${r}, d, ${pick((d) => `a${r}_${d}`)} * inv); } }`);
  }
  return lines;
}

/** The key mask's offset as a placeToken operand. */
const maskOp = (plan: AttentionPlan): [string, 'ms'][] => (plan.keyMask ? [['moff', 'ms']] : []);

/** 1 / l, or 0 for a row whose keys are all masked (l = 0) when there is a key mask. */
const empty = (plan: AttentionPlan, l: string) => (plan.keyMask ? `select(0.0, 1.0 / ${l}, ${l} > 0.0)` : `1.0 / ${l}`);

/** Cooperative copy of keys j0 .. j0+kvTile-1 (clamped) into kt/vt, with their mask and bias codes. */
function stageTile(c: BodyContext): string[] {
  const { plan, KVT } = c;
  return [
    `for (var e = lid; e < ${KVT}u * DH4; e += WG) {`,
    `  let jj = e / DH4; let d = e % DH4;`,
    `  var koff = kb; var voff = vb;${plan.keyMask ? ' var moff = mb;' : ''}`,
    ...placeToken(plan.keyAxes, `min(j0 + jj, NK - 1u)`, 'k', [['koff', 'ks'], ['voff', 'vs'], ...maskOp(plan)], c.keyWin, plan.masked, c.radix, -1),
    `  kt[e] = load_k(koff, d); vt[e] = load_v(voff, d);`,
    plan.keyMask ? `  if (d == 0u) { kkeep[jj] = km[moff]; }` : '',
    plan.masked ? `  if (d == 0u) { kreg[jj] = kregion; }` : '',
    c.bias ? `  if (d == 0u) { kbia[jj] = kbias; }` : '',
    `}`];
}

/**
 * GPU-friendly variant: per key an online-softmax update of R rows held in private arrays, K/V read
 * directly or staged kvTile keys at a time in workgroup memory.
 */
function perKeyBody(c: BodyContext): string[] {
  const { plan, KVT } = c;
  const keyPlace = (j: string) => [`var koff = kb; var voff = vb;${plan.keyMask ? ' var moff = mb;' : ''}`,
    ...placeToken(plan.keyAxes, j, 'k', [['koff', 'ks'], ['voff', 'vs'], ...maskOp(plan)], c.keyWin, plan.masked, c.radix, -1)];
  const update = (kvec: (d: string) => string, vvec: (d: string) => string, kregion: string, kbias: string, kidx: string, kmask: string) => [
    // explicit zeroing: a var declared in a loop body without it kept its old value on Dawn + lavapipe
    `var s: array<f32, R>; for (var r = 0u; r < R; r++) { s[r] = 0.0; }`,
    `for (var d = 0u; d < DH4; d++) { let kd = ${kvec('d')}; for (var r = 0u; r < R; r++) { s[r] += dot(qv[r * DH4 + d], kd); } }`,
    `var pr: array<f32, R>;`,
    `for (var r = 0u; r < R; r++) {`,
    `  let sr = s[r]${biasTerm(c, 'rowBias[r]', kbias)};`,
    `  let keep = ${[...(plan.masked ? [`rowRegion[r] == ${kregion}`] : []), ...(plan.causal ? [`${kidx} <= ${c.row('r')}`] : []),
      ...(plan.keyMask ? [`${kmask} != 0.0`] : [])].join(' && ') || 'true'};`,
    `  if (keep && sr > m[r]) { let f = exp(m[r] - sr); l[r] *= f; for (var d = 0u; d < DH4; d++) { acc[r * DH4 + d] *= f; } m[r] = sr; }`,
    `  pr[r] = select(0.0, exp(sr - m[r]), keep); l[r] += pr[r];`,
    `}`,
    `for (var d = 0u; d < DH4; d++) { let vd = ${vvec('d')}; for (var r = 0u; r < R; r++) { acc[r * DH4 + d] += pr[r] * vd; } }`,
  ];
  const keyLoop = KVT === 0
    ? [`for (var j = 0u; j < NK; j++) {`, ...keyPlace('j'), ...update((d) => `load_k(koff, ${d})`, (d) => `load_v(voff, ${d})`, 'kregion', 'kbias', 'j', 'km[moff]'), `}`]
    : [`for (var j0 = 0u; j0 < NK; j0 += ${KVT}u) {`,
      ...stageTile(c),
      `  workgroupBarrier();`,
      `  for (var jj = 0u; jj < min(${KVT}u, NK - j0); jj++) {`,
      ...update((d) => `kt[jj * DH4 + ${d}]`, (d) => `vt[jj * DH4 + ${d}]`, 'kreg[jj]', 'kbia[jj]', '(j0 + jj)', 'kkeep[jj]'), `  }`,
      `  workgroupBarrier();`, `}`];
  return [
    `var qv: array<vec4f, R * DH4>; var acc: array<vec4f, R * DH4>;`,
    `var m: array<f32, R>; var l: array<f32, R>; var ooff: array<u32, R>;`,
    plan.masked ? `var rowRegion: array<u32, R>;` : '', c.bias ? `var rowBias: array<u32, R>;` : '',
    `for (var r = 0u; r < R; r++) {`,
    `  var qoff = qb; var oo = ob;`,
    ...placeToken(plan.queryAxes, `min(${c.row('r')}, NQ - 1u)`, 'q', [['qoff', 'qs'], ['oo', 'os']], (i) => c.winNames[i], plan.masked, c.radix, 1),
    `  ooff[r] = oo; m[r] = -3.0e38; l[r] = 0.0;`,
    plan.masked ? `  rowRegion[r] = qregion;` : '',
    c.bias ? `  rowBias[r] = qbias;` : '',
    `  for (var d = 0u; d < DH4; d++) { qv[r * DH4 + d] = load_q(qoff, d) * ${c.scale}; acc[r * DH4 + d] = vec4f(0.0); }`,
    `}`,
    ...keyLoop,
    `for (var r = 0u; r < R; r++) {`,
    `  if (${c.row('r')} < NQ) { let inv = ${empty(plan, 'l[r]')}; for (var d = 0u; d < DH4; d++) { store_o(ooff[r], d, acc[r * DH4 + d] * inv); } }`,
    `}`];
}

/** Workgroup size (a multiple of `unit`, up to 64) that pads the rows of one window least. */
function pickWorkgroupSize(rows: number, unit: number): number {
  let best = 64;
  for (let wg = 64; wg >= Math.max(unit, 16); wg -= unit) if (Math.ceil(rows / wg) * wg < Math.ceil(rows / best) * best) best = wg;
  return best;
}

/** FNV-1a of the WGSL: the cache key follows every compile-time parameter. */
function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36) + s.length.toString(36);
}
