// The checked GEMM problem that the generators (gemm-lanes.ts, gemm-tiles.ts), the float64
// reference and the entry point (gemm.ts) share: parameters, tilings, and planGemm, which validates
// the views and splits each into batch and matrix strides. The parameters are described in gemm.ts.
import type { AdapterTraits } from './kernel.ts';
import { checkActivation, type Activation } from './epilogue.ts';
import { extent, type View } from './view.ts';

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
export type GemmTiling = ({ kind: 'lanes' } & LanesTiling) | ({ kind: 'tiles' } & TilesTiling);
export interface LanesTiling { lanes: number; rows: number; colVecs: number }
export interface TilesTiling {
  tileM: number; tileN: number; tileK: number; threadRows: number; threadCols: number;
  /** workgroup tiles and accumulators as vec4s (threadRows and threadCols multiples of 4; see gemm-tiles.ts) */
  vector?: boolean;
  /** with vector: the next k step loaded into registers during this one's FMAs, all register loops written out (gemm-prefetch.ts) */
  prefetch?: boolean;
}

/** Throws `${kernel} tiling: ...` for a tiles tiling no skeleton can generate (GEMM's and the convolution's). */
export function checkTilesTiling(t: TilesTiling, kernel: string): void {
  for (const k of ['tileM', 'tileN', 'tileK', 'threadRows', 'threadCols'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 1) throw new Error(`${kernel} tiling: ${k} must be a positive integer (got ${t[k]})`);
  }
  if (t.tileM % t.threadRows || t.tileN % t.threadCols) throw new Error(`${kernel} tiling: threadRows must divide tileM and threadCols tileN`);
  if (t.vector && (t.threadRows % 4 || t.threadCols % 4)) throw new Error(`${kernel} tiling: the vector variant needs threadRows and threadCols multiples of 4`);
  if (t.prefetch && !t.vector) throw new Error(`${kernel} tiling: prefetch is a form of the vector variant (vector: true)`);
  const threads = (t.tileM / t.threadRows) * (t.tileN / t.threadCols);
  if (threads > 256) throw new Error(`${kernel} tiling: ${threads} invocations per workgroup (at most 256)`);
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

/**
 * The tilings the runtime's tuner times for one GEMM (the default first). A SIMD software adapter
 * gets the subgroup kernel at 1, 2 and 4 rows per lane and 1 or 2 column vectors; any other adapter
 * gets, after the default scalar tiles, the vector tiles of vectorTileCandidates.
 */
export function gemmTilingCandidates(adapter: AdapterTraits | undefined, plan: Pick<GemmPlan, 'M' | 'N' | 'eps'>): GemmTiling[] {
  const first = chooseGemmTiling(adapter, plan.M);
  const out: GemmTiling[] = [first];
  const add = (t: GemmTiling) => { if (!out.some((o) => JSON.stringify(o) === JSON.stringify(t))) out.push(t); };
  if (first.kind === 'lanes') {
    const L = first.lanes;
    for (const rows of [L, 2 * L, 4 * L]) for (const colVecs of [1, 2]) if (rows * colVecs <= 4 * L) add({ kind: 'lanes', lanes: L, rows, colVecs });
    return out;
  }
  for (const t of vectorTileCandidates(adapter, plan)) add({ kind: 'tiles', ...t });
  return out;
}

/**
 * Vector tiles (plain and prefetching) from 32 x 32 to 128 x 128 outputs per workgroup that fit the
 * adapter's limits (invocations, workgroup size, workgroup memory with a layer-norm prologue's row
 * statistics when `eps` is set) and are not much larger than an M x N problem. The GEMM and the
 * implicit-GEMM convolution offer these to the tuner.
 */
export function vectorTileCandidates(adapter: AdapterTraits | undefined, plan: { M: number; N: number; eps?: number }): TilesTiling[] {
  const lim = adapter?.limits ?? {};
  const maxThreads = lim.maxComputeInvocationsPerWorkgroup ?? 256;
  const maxX = lim.maxComputeWorkgroupSizeX ?? 256, maxY = lim.maxComputeWorkgroupSizeY ?? 256;
  const maxBytes = lim.maxComputeWorkgroupStorageSize ?? 16384;
  const shapes: [number, number, number, number, number][] = [ // tileM, tileN, tileK, threadRows, threadCols
    [64, 64, 16, 4, 4], [128, 64, 16, 8, 4], [64, 128, 16, 4, 8], [128, 128, 8, 8, 8], [128, 128, 16, 8, 8], [32, 64, 16, 4, 4], [64, 32, 16, 4, 4], [32, 32, 16, 4, 4],
  ];
  const out: TilesTiling[] = [];
  for (const [tileM, tileN, tileK, threadRows, threadCols] of shapes) {
    const gx = tileN / threadCols, gy = tileM / threadRows, threads = gx * gy;
    const statBytes = plan.eps === undefined ? 0 : 4 * tileM * (2 * Math.max(1, Math.floor(threads / tileM)) + 3);
    if (threads > maxThreads || gx > maxX || gy > maxY || tileM > 2 * Math.max(32, plan.M) || tileN > 2 * Math.max(32, plan.N)) continue;
    for (const prefetch of [false, true]) {
      // The prefetching kernel pads each k row of the A tile by one vec4.
      if (4 * tileK * (tileM + tileN + (prefetch ? 4 : 0)) + statBytes > maxBytes) continue;
      out.push({ tileM, tileN, tileK, threadRows, threadCols, vector: true, ...(prefetch ? { prefetch } : {}) });
    }
  }
  return out;
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

/** The optional operands, in binding order (between b and out). */
export const OPTIONAL_OPERANDS = ['scale', 'shift', 'bias', 'gate', 'residual'] as const;

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
  for (const k of OPTIONAL_OPERANDS) {
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
