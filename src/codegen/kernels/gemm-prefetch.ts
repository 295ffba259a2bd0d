// The prefetching vector tile kernel (`vector: true, prefetch: true`), written for GPUs that hide
// memory latency with independent work: the same vec4 tiles as tiledMatmulVec4Wgsl, but each
// invocation loads its share of the next k step into registers before it multiplies the current
// one out of workgroup memory, so the global loads are in flight during the FMAs. Everything an
// invocation holds is a named variable and every loop over registers is written out, so no driver
// has to unroll or promote an array to keep the accumulators in registers. The A tile's k rows are
// padded by one vec4 so that the stores of consecutive k by neighbouring invocations fall in
// different banks. Each output still sums its products one k at a time in order: the results are
// bit-identical to the scalar and vector tiles.
import type { TilesTiling } from './gemm-plan.ts';
import type { GemmWgsl } from './gemm-lanes.ts';
import { assemble, tiledMatmulVec4Wgsl, tiledMatmulWgsl, vectorLoads, vectorStores, type TiledMatmulSource } from './gemm-tiles.ts';

const u = (n: number) => `${n}u`;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const LANE = ['x', 'y', 'z', 'w'];

export function tiledMatmulPrefetchWgsl(s: TiledMatmulSource, t: TilesTiling): GemmWgsl {
  const { M, N, K } = s;
  const { tileM: TM, tileN: TN, tileK: TK, threadRows: TR, threadCols: TC } = t;
  const GX = TN / TC, GY = TM / TR, T = GX * GY, R4 = TR / 4, C4 = TC / 4, TM4 = TM / 4, TN4 = TN / 4;
  const AS = TM4 + 1; // vec4s per k row of tileA, padded
  const { rowsOf, loadB4 } = vectorLoads(s);
  // Slot r of an invocation holds element e = t + r * T of a tile (TM4 x TK vec4s of A, TK x TN4 of B).
  const slotsA = Math.ceil((TM4 * TK) / T), slotsB = Math.ceil((TN4 * TK) / T);
  const guard = (count: number, r: number, body: string[]) => ((r + 1) * T > count ? [`if (t + ${u(r * T)} < ${u(count)}) {`, ...body.map((l) => `  ${l}`), '}'] : body);
  const load = (k0: string) => [
    ...range(slotsA).flatMap((r) => guard(TM4 * TK, r, [
      '{', `  let e = t + ${u(r * T)};`, `  let mm = (e / ${u(TK)}) * 4u;`, `  let k = ${k0} + e % ${u(TK)};`, `  let kc = min(k, ${u(K - 1)});`,
      `  ra${r} = select(vec4f(0.0), vec4f(${rowsOf('mm').join(', ')}), k < ${u(K)});`, '}'])),
    ...range(slotsB).flatMap((r) => guard(TN4 * TK, r, [
      '{', `  let e = t + ${u(r * T)};`, `  let k = ${k0} + e / ${u(TN4)};`, `  let kc = min(k, ${u(K - 1)});`,
      `  rb${r} = select(vec4f(0.0), ${loadB4('kc', `n0 + (e % ${u(TN4)}) * 4u`)}, k < ${u(K)});`, '}'])),
  ];
  const store = [
    ...range(slotsA).flatMap((r) => guard(TM4 * TK, r, [`{ let e = t + ${u(r * T)}; tileA[(e % ${u(TK)}) * ${u(AS)} + e / ${u(TK)}] = ra${r}; }`])),
    ...range(slotsB).flatMap((r) => guard(TN4 * TK, r, [`tileB[t + ${u(r * T)}] = rb${r};`])),
  ];
  const acc = (i: number, j: number) => `c${i}_${j}`;
  const multiply = [
    ...range(R4).map((i) => `let a${i} = tileA[kk * ${u(AS)} + ${u(i * GY)} + lid.y];`),
    ...range(C4).map((j) => `let b${j} = tileB[kk * ${u(TN4)} + ${u(j * GX)} + lid.x];`),
    ...range(TR).flatMap((i) => range(C4).map((j) => `${acc(i, j)} = fma(vec4f(a${i >> 2}.${LANE[i & 3]}), b${j}, ${acc(i, j)});`)),
  ];
  // The accumulators leave registers once, into an array the write-out loops over: one copy of the
  // store and its epilogue instead of TR x TC (which multiplied the shader's compile time).
  const write = [`var res: array<vec4f, ${TR * C4}>;`, ...range(TR).flatMap((i) => range(C4).map((j) => `res[${i * C4 + j}] = ${acc(i, j)};`)),
    ...vectorStores(s, t, 'res')];
  return assemble(s, t, 'vec4f', [
    ...range(slotsA).map((r) => `var ra${r} = vec4f(0.0);`),
    ...range(slotsB).map((r) => `var rb${r} = vec4f(0.0);`),
    ...range(TR).flatMap((i) => range(C4).map((j) => `var ${acc(i, j)} = vec4f(0.0);`)),
    ...load('0u'),
    `for (var k0 = 0u; k0 < ${u(K)}; k0 += ${u(TK)}) {`,
    ...store.map((l) => `  ${l}`),
    '  workgroupBarrier();',
    `  if (k0 + ${u(TK)} < ${u(K)}) {`,
    ...load(`k0 + ${u(TK)}`).map((l) => `    ${l}`),
    '  }',
    `  for (var kk = 0u; kk < ${u(TK)}; kk++) {`,
    ...multiply.map((l) => `    ${l}`),
    '  }',
    '  workgroupBarrier();',
    '}',
    ...write,
  ], 1);
}

/** The skeleton a tiles tiling names (here, where all three are in reach without an import cycle). */
export function tileSkeleton(t: TilesTiling): (s: TiledMatmulSource, t: TilesTiling) => GemmWgsl {
  return t.prefetch ? tiledMatmulPrefetchWgsl : t.vector ? tiledMatmulVec4Wgsl : tiledMatmulWgsl;
}
