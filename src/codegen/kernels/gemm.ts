/**
 * Batched GEMM with a fused prologue and epilogue: out[...b, m, n] = epi(sum_k pro(A)[...b, m, k] * B[...b, k, n]).
 *
 * describe — GemmParams (every operand is a strided View, so transposes and permutations are strides):
 *   a         [...batch, M, K]
 *   b         [...batch, K, N], or [K, N] shared by every batch entry (weights); stride 0 broadcasts too
 *   out       [...batch, M, N]
 *   normalize { eps }: layer norm of each A row over K, no affine (DiT adaLN). The row mean and variance are
 *             computed inside the kernel (one shifted single pass over the row), nothing is precomputed.
 *   scale     [...batch, K] and/or shift [...batch, K]: then x * (1 + scale) + shift (per sample in DiT:
 *             broadcast over tokens; use stride 0 on batch axes to share across a group of entries)
 *   bias      [N]; activation: none | silu | gelu (erf) | gelu_tanh | relu | sigmoid | tanh
 *   gate      [...batch, N]; residual [...batch, M, N]
 *   epilogue order: act(acc + bias) * gate + residual
 *   tiling    optional; else chosen by chooseGemmTiling(adapter) — pass `adapter` (the runtime's Gpu) to get
 *             the tiling that suits it: 'lanes' for SIMD software adapters, 'tiles' (shared memory) otherwise.
 * Bindings, in order: a, b, [scale], [shift], [bias], [gate], [residual], out (only the present ones).
 */
import { type KernelSpec } from './kernel.ts';
import { type View } from './view.ts';
import { extent } from './elementwise.ts';
import { checkActivation, apply64, type Activation } from './epilogue.ts';
import { gemmLanesWgsl } from './gemm-lanes.ts';
import { gemmTilesWgsl } from './gemm-tiles.ts';

export interface GemmParams {
  a: View;
  b: View;
  out: View;
  normalize?: { eps: number };
  scale?: View;
  shift?: View;
  bias?: View;
  activation?: Activation;
  gate?: View;
  residual?: View;
  tiling?: GemmTiling;
  adapter?: AdapterTraits;
}

/**
 * 'lanes': one subgroup of `lanes` invocations per workgroup (= the SIMD width of a CPU adapter) shares
 * `rows` rows of A, each lane loads distinct A rows and hands them to the others with subgroup
 * broadcasts, and owns 4 * colVecs columns of B in registers. No workgroup memory, no barriers.
 * 'tiles': the classic GPU kernel: tileM x tileN outputs per workgroup staged through workgroup memory
 * in steps of tileK, each invocation computing threadRows x threadCols outputs.
 */
export type GemmTiling =
  | { kind: 'lanes'; lanes: number; rows: number; colVecs: number }
  | { kind: 'tiles'; tileM: number; tileN: number; tileK: number; threadRows: number; threadCols: number };

/** What the tiling chooser needs from an adapter; the runtime's Gpu object satisfies it. */
export interface AdapterTraits {
  software: boolean;
  features: ReadonlySet<string>;
  info: { subgroupMinSize?: number; subgroupMaxSize?: number };
}

export const DEFAULT_TILES: GemmTiling = { kind: 'tiles', tileM: 64, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 };

/**
 * Software adapters run a workgroup as SIMD lanes and pay ~100 cycles per buffer load instruction,
 * so the winning kernel loads each value once per subgroup and shares it by broadcast (measured on
 * lavapipe: workgroup-memory tiles with barriers were ~3x slower). A GPU wants workgroup-memory tiles.
 */
export function chooseGemmTiling(adapter?: AdapterTraits, m = Infinity): GemmTiling {
  const sg = adapter?.info.subgroupMinSize;
  if (adapter?.software && adapter.features.has('subgroups') && sg && sg === adapter.info.subgroupMaxSize && sg <= 16) {
    // More rows amortise each lane's B loads over more FMAs; measured on lavapipe at 1024^3: 32 rows
    // beat 16 and 24 (more rows spill). Small M keeps small tiles (fewer wasted rows, faster compile).
    return { kind: 'lanes', lanes: sg, rows: m >= 32 * sg ? 4 * sg : m > 8 * sg ? 2 * sg : sg, colVecs: 1 };
  }
  return DEFAULT_TILES;
}

// ---------------------------------------------------------------- validation

/** The checked problem: sizes, batch shape and every operand's strides split into batch and matrix parts. */
export interface GemmPlan {
  batch: number[];
  M: number; N: number; K: number;
  a: Operand; b: Operand; out: Operand;
  scale?: Operand; shift?: Operand; bias?: Operand; gate?: Operand; residual?: Operand;
  eps?: number;
  activation: Activation;
}

/** A view split into its batch strides (one per batch axis, 0 where shared) and its trailing strides. */
export interface Operand { name: string; view: View; batchStrides: number[]; strides: number[] }

const OPTIONAL = ['scale', 'shift', 'bias', 'gate', 'residual'] as const;

function checkView(v: unknown, what: string): asserts v is View {
  const o = v as View;
  if (!o || !Array.isArray(o.shape) || !Array.isArray(o.strides) || o.shape.length !== o.strides.length) {
    throw new Error(`gemm: ${what} must be a view { shape, strides, offset } with one stride per axis`);
  }
  const ints = [...o.shape, ...o.strides, o.offset];
  if (ints.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`gemm: ${what} needs non-negative integer shape, strides and offset`);
  if (o.shape.some((n) => n === 0)) throw new Error(`gemm: ${what} has an empty axis ([${o.shape}])`);
}

/** Splits `v` (rank = batch rank + tail.length, or tail.length alone when `shareable`) against the expected sizes. */
function operand(name: string, v: View, batch: number[], tail: number[], tailNames: string, shareable: boolean): Operand {
  checkView(v, name);
  const r = v.shape.length;
  const shared = shareable && r === tail.length;
  if (!shared && r !== batch.length + tail.length) {
    throw new Error(`gemm: ${name} must have shape [...batch, ${tailNames}] = [${[...batch, ...tail]}]${shareable ? ` or [${tail}]` : ''}, got [${v.shape}]`);
  }
  const lead = shared ? 0 : batch.length;
  const batchStrides = batch.map((n, i) => {
    if (shared) return 0;
    if (v.shape[i] === n) return v.strides[i];
    if (v.shape[i] === 1) return 0;
    throw new Error(`gemm: ${name} batch axis ${i} has size ${v.shape[i]}, expected ${n} (or 1)`);
  });
  tail.forEach((n, i) => {
    if (v.shape[lead + i] !== n) throw new Error(`gemm: ${name} must have shape [...batch, ${tailNames}] = [${[...batch, ...tail]}], got [${v.shape}]`);
  });
  return { name, view: v, batchStrides, strides: v.strides.slice(lead) };
}

export function planGemm(p: GemmParams): GemmPlan {
  checkView(p.a, 'a');
  checkView(p.out, 'out');
  if (p.a.shape.length < 2) throw new Error(`gemm: a must have shape [...batch, M, K], got [${p.a.shape}]`);
  const batch = p.a.shape.slice(0, -2);
  const [M, K] = p.a.shape.slice(-2);
  checkView(p.b, 'b');
  const N = p.b.shape[p.b.shape.length - 1];
  const plan: GemmPlan = {
    batch, M, N, K, activation: p.activation ?? 'none',
    a: operand('a', p.a, batch, [M, K], 'M, K', false),
    b: operand('b', p.b, batch, [K, N], 'K, N', true),
    out: operand('out', p.out, batch, [M, N], 'M, N', false),
  };
  checkActivation(plan.activation, 'gemm');
  if (p.normalize) {
    const eps = p.normalize.eps;
    if (typeof eps !== 'number' || !(eps > 0)) throw new Error('gemm: normalize.eps must be a positive number');
    plan.eps = eps;
  }
  const tails = { scale: [[K], 'K'], shift: [[K], 'K'], bias: [[N], 'N'], gate: [[N], 'N'], residual: [[M, N], 'M, N'] } as const;
  for (const k of OPTIONAL) {
    const v = p[k];
    if (v === undefined) continue;
    const [tail, names] = tails[k];
    plan[k] = k === 'bias' ? operand(k, v, [], [...tail], names, true) : operand(k, v, batch, [...tail], names, true);
  }
  const outLast = extent(p.out);
  if (plan.out.batchStrides.some((s, i) => s === 0 && batch[i] > 1) || plan.out.strides.some((s, i) => s === 0 && [M, N][i] > 1)) {
    throw new Error('gemm: out must not broadcast (a stride 0 over an axis longer than 1 writes one element twice)');
  }
  if (outLast > 2 ** 31) throw new Error('gemm: out is too large for 32-bit indexing');
  return plan;
}

// ---------------------------------------------------------------- float64 reference

export type GemmData = { a: ArrayLike<number>; b: ArrayLike<number> } & Partial<Record<(typeof OPTIONAL)[number], ArrayLike<number>>>;

/** Calls f(flatIndex, multiIndex) for every index of `shape` in row-major order. */
export function forEachIndex(shape: readonly number[], f: (flat: number, idx: number[]) => void): void {
  const idx = shape.map(() => 0);
  const total = shape.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < total; flat++) {
    f(flat, idx);
    for (let i = shape.length - 1; i >= 0; i--) { if (++idx[i] < shape[i]) break; idx[i] = 0; }
  }
}

const dot = (idx: readonly number[], s: readonly number[]) => idx.reduce((o, x, i) => o + x * s[i], 0);

/**
 * float64 GEMM over the buffers in `d`; returns the output buffer (extent(out) elements): written
 * elements hold the result, the rest NaN (unwritten, like the poisoned GPU buffer).
 * With `magnitude`, each element instead holds the scale its rounding error grows with:
 * (sum_k |pro(A)[m, k]| * |B[k, n]| + |bias|) * |gate| + |residual|. A sum that cancels to near zero
 * keeps the absolute error of its terms, so a comparison judges it against this scale.
 */
export function gemmReference(p: GemmParams, d: GemmData, magnitude = false): Float64Array {
  const g = planGemm(p);
  const { M, N, K } = g;
  const out = new Float64Array(extent(p.out)).fill(NaN);
  const row = new Float64Array(K);
  const base = (o: Operand | undefined, bi: number[]) => (o ? o.view.offset + dot(bi, o.batchStrides) : 0);
  forEachIndex(g.batch, (_, bi) => {
    const [a0, b0, o0] = [base(g.a, bi), base(g.b, bi), base(g.out, bi)];
    const [sc0, sh0, ga0, re0] = [base(g.scale, bi), base(g.shift, bi), base(g.gate, bi), base(g.residual, bi)];
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) row[k] = d.a[a0 + m * g.a.strides[0] + k * g.a.strides[1]];
      if (g.eps !== undefined) {
        const mean = row.reduce((s, x) => s + x, 0) / K;
        const variance = row.reduce((s, x) => s + (x - mean) ** 2, 0) / K;
        const rstd = 1 / Math.sqrt(variance + g.eps);
        for (let k = 0; k < K; k++) row[k] = (row[k] - mean) * rstd;
      }
      for (let k = 0; k < K; k++) {
        if (g.scale) row[k] *= 1 + d.scale![sc0 + k * g.scale.strides[0]];
        if (g.shift) row[k] += d.shift![sh0 + k * g.shift.strides[0]];
      }
      for (let n = 0; n < N; n++) {
        let acc = 0;
        const bias = g.bias ? d.bias![g.bias.view.offset + n * g.bias.strides[0]] : undefined;
        const gate = g.gate ? d.gate![ga0 + n * g.gate.strides[0]] : undefined;
        const residual = g.residual ? d.residual![re0 + m * g.residual.strides[0] + n * g.residual.strides[1]] : undefined;
        const at = o0 + m * g.out.strides[0] + n * g.out.strides[1];
        if (magnitude) {
          for (let k = 0; k < K; k++) acc += Math.abs(row[k] * d.b[b0 + k * g.b.strides[0] + n * g.b.strides[1]]);
          out[at] = (acc + Math.abs(bias ?? 0)) * Math.abs(gate ?? 1) + Math.abs(residual ?? 0);
          continue;
        }
        for (let k = 0; k < K; k++) acc += row[k] * d.b[b0 + k * g.b.strides[0] + n * g.b.strides[1]];
        out[at] = apply64(g.activation, acc, bias, gate, residual);
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------- entry point

function checkTiling(t: GemmTiling): void {
  const pos = (x: number, what: string) => {
    if (!Number.isInteger(x) || x < 1) throw new Error(`gemm tiling: ${what} must be a positive integer (got ${x})`);
  };
  if (t.kind === 'lanes') {
    pos(t.lanes, 'lanes'); pos(t.rows, 'rows'); pos(t.colVecs, 'colVecs');
    if (t.rows % t.lanes) throw new Error(`gemm tiling: rows (${t.rows}) must be a multiple of lanes (${t.lanes})`);
  } else if (t.kind === 'tiles') {
    pos(t.tileM, 'tileM'); pos(t.tileN, 'tileN'); pos(t.tileK, 'tileK'); pos(t.threadRows, 'threadRows'); pos(t.threadCols, 'threadCols');
    if (t.tileM % t.threadRows || t.tileN % t.threadCols) throw new Error('gemm tiling: threadRows must divide tileM and threadCols tileN');
    const threads = (t.tileM / t.threadRows) * (t.tileN / t.threadCols);
    if (threads > 256) throw new Error(`gemm tiling: ${threads} invocations per workgroup (at most 256)`);
  } else {
    throw new Error(`gemm tiling: unknown kind '${(t as { kind: unknown }).kind}' (lanes or tiles)`);
  }
}

/** The GEMM kernel for `p`; see the describe block at the top of this file. */
export function gemmKernel(p: GemmParams): KernelSpec {
  const plan = planGemm(p);
  const tiling = p.tiling ?? chooseGemmTiling(p.adapter, plan.M);
  checkTiling(tiling);
  const body = tiling.kind === 'lanes' ? gemmLanesWgsl(plan, tiling) : gemmTilesWgsl(plan, tiling);
  const ops = [plan.a, plan.b, ...OPTIONAL.map((k) => plan[k]).filter((o): o is Operand => !!o), plan.out];
  const key = ['gemm', JSON.stringify(tiling), plan.activation, plan.eps ?? '-',
    ...ops.map((o) => `${o.name}:${o.view.shape}/${o.view.strides}/${o.view.offset}`)].join('|');
  return {
    key, wgsl: body.wgsl, entryPoint: 'main', dispatch: body.dispatch, features: body.features,
    bindings: ops.map((o) => ({ name: `${o.name}_buf`, access: o === plan.out ? 'read_write' as const : 'read' as const })),
  };
}

/** Binding order of the present operands (for callers assembling buffers). */
export function gemmBindingNames(p: GemmParams): string[] {
  return ['a', 'b', ...OPTIONAL.filter((k) => p[k] !== undefined), 'out'];
}
