// The matrix kernel for GPUs: tileM x tileN outputs per workgroup, A and B staged through workgroup
// memory tileK at a time, each invocation keeping threadRows x threadCols accumulators. Rows and
// columns of an invocation are interleaved by the thread-grid size so that neighbouring invocations
// touch neighbouring memory. The skeleton is shared: GEMM and the implicit-GEMM convolution only
// supply how an A element, a B element and an output are addressed.
import { applyWgsl, activationWgsl } from './epilogue.ts';
import { f32Literal } from './expr.ts';
import type { GemmPlan, TilesTiling } from './gemm-plan.ts';
import { checkGrid, layoutOf, type GemmWgsl } from './gemm-lanes.ts';
import { batchBaseWgsl, batchIndexWgsl, declareBuffer, offsetWgsl, type OperandLayout } from './operand-wgsl.ts';

/** What a tiled matrix kernel computes: out(m, n) = store(sum_k A(m, k) * B(k, n)) for batch entry wg.z. */
export interface TiledMatmulSource {
  M: number; N: number; K: number; batches: number;
  /** buffer declarations and helper functions */
  decls: string[];
  /** statements run first by every invocation (m0, n0, t, lid, wg are in scope): batch bases, statistics */
  prelude: string[];
  /** workgroup arrays the prelude uses */
  shared?: string[];
  /** A(m, k) for in-range m and k; `mm` is the row within the tile */
  loadA(m: string, k: string, mm: string): string;
  /** B(k, n) for in-range k and n */
  loadB(k: string, n: string): string;
  /** optional, vector variant: vec4f of B(k, n..n+3) for in-range k and n < N, clamping columns past N - 1 */
  loadB4?(k: string, n: string): string;
  /** statement writing the output (m, n) from the f32 `acc`; only called for m < M and n < N */
  store(m: string, n: string, acc: string): string;
}

const u = (n: number) => `${n}u`;

export function tiledMatmulWgsl(s: TiledMatmulSource, t: TilesTiling): GemmWgsl {
  const { M, N, K } = s;
  const { tileM: TM, tileN: TN, tileK: TK, threadRows: TR, threadCols: TC } = t;
  const GX = TN / TC, GY = TM / TR, T = GX * GY;
  return assemble(s, t, 'f32', [
    `var acc: array<array<f32, ${TC}>, ${TR}>;`,
    `for (var k0 = 0u; k0 < ${u(K)}; k0 += ${u(TK)}) {`,
    `  for (var e = t; e < ${u(TM * TK)}; e += ${u(T)}) {`,
    `    let mm = e / ${u(TK)};`, `    let k = k0 + e % ${u(TK)};`,
    `    let m = min(m0 + mm, ${u(M - 1)});`, `    let kc = min(k, ${u(K - 1)});`,
    `    tileA[(e % ${u(TK)}) * ${u(TM)} + mm] = select(0.0, ${s.loadA('m', 'kc', 'mm')}, k < ${u(K)});`,
    '  }',
    `  for (var e = t; e < ${u(TN * TK)}; e += ${u(T)}) {`,
    `    let k = k0 + e / ${u(TN)};`,
    `    let n = min(n0 + e % ${u(TN)}, ${u(N - 1)});`, `    let kc = min(k, ${u(K - 1)});`,
    `    tileB[e] = select(0.0, ${s.loadB('kc', 'n')}, k < ${u(K)});`,
    '  }',
    '  workgroupBarrier();',
    `  for (var kk = 0u; kk < ${u(TK)}; kk++) {`,
    `    var a: array<f32, ${TR}>;`,
    `    for (var i = 0u; i < ${u(TR)}; i++) { a[i] = tileA[kk * ${u(TM)} + lid.y + i * ${u(GY)}]; }`,
    `    for (var j = 0u; j < ${u(TC)}; j++) {`,
    `      let bv = tileB[kk * ${u(TN)} + lid.x + j * ${u(GX)}];`,
    `      for (var i = 0u; i < ${u(TR)}; i++) { acc[i][j] = fma(a[i], bv, acc[i][j]); }`,
    '    }',
    '  }',
    '  workgroupBarrier();',
    '}',
    `for (var i = 0u; i < ${u(TR)}; i++) {`,
    `  let m = m0 + lid.y + i * ${u(GY)};`,
    `  for (var j = 0u; j < ${u(TC)}; j++) {`,
    `    let n = n0 + lid.x + j * ${u(GX)};`,
    `    if (m < ${u(M)} && n < ${u(N)}) { ${s.store('m', 'n', 'acc[i][j]')} }`,
    '  }', '}',
  ]);
}

/**
 * What both variants share: the tiles in workgroup memory (`elem` = f32, or vec4f of 4 rows / 4
 * columns), a grid of tileN / threadCols x tileM / threadRows invocations, the tile's origin (m0,
 * n0) and the invocation's index t ahead of the source's prelude, and one workgroup per output tile
 * and batch entry. `padA` elements follow each k row of tileA.
 */
export function assemble(s: TiledMatmulSource, t: TilesTiling, elem: 'f32' | 'vec4f', body: string[], padA = 0): GemmWgsl {
  const per = elem === 'f32' ? 1 : 4;
  const GX = t.tileN / t.threadCols, GY = t.tileM / t.threadRows;
  const wgsl = [...s.decls, `var<workgroup> tileA: array<${elem}, ${t.tileK * (t.tileM / per + padA)}>;`, `var<workgroup> tileB: array<${elem}, ${(t.tileK * t.tileN) / per}>;`,
    ...(s.shared ?? []),
    `@compute @workgroup_size(${GX}, ${GY})`,
    'fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {',
    ...[`let m0 = wg.y * ${u(t.tileM)};`, `let n0 = wg.x * ${u(t.tileN)};`, `let t = lid.y * ${u(GX)} + lid.x;`, ...s.prelude, ...body].map((l) => `  ${l}`),
    '}', ''].join('\n');
  return { wgsl, dispatch: checkGrid([Math.ceil(s.N / t.tileN), Math.ceil(s.M / t.tileM), s.batches], 'matrix kernel') };
}

/**
 * The vector variant (`vector: true`): the same tiles, held in workgroup memory as vec4s of 4
 * consecutive rows of A (for one k) and 4 consecutive columns of B, so the inner loop reads
 * threadRows / 4 + threadCols / 4 vec4s per k step and issues threadRows * threadCols / 4 vec4 FMAs.
 * An invocation owns threadRows / 4 blocks of 4 rows and threadCols / 4 blocks of 4 columns, the
 * blocks interleaved by the thread grid so that neighbouring invocations read neighbouring vec4s.
 * Each output still sums its products one k at a time in order, as the scalar variant does.
 */
export function tiledMatmulVec4Wgsl(s: TiledMatmulSource, t: TilesTiling): GemmWgsl {
  const { M, N, K } = s;
  const { tileM: TM, tileN: TN, tileK: TK, threadRows: TR, threadCols: TC } = t;
  const GX = TN / TC, GY = TM / TR, T = GX * GY, R4 = TR / 4, C4 = TC / 4, TM4 = TM / 4, TN4 = TN / 4;
  const { rowsOf, loadB4 } = vectorLoads(s);
  return assemble(s, t, 'vec4f', [
    `var acc: array<vec4f, ${TR * C4}>;`,
    `for (var k0 = 0u; k0 < ${u(K)}; k0 += ${u(TK)}) {`,
    `  for (var e = t; e < ${u(TM4 * TK)}; e += ${u(T)}) {`,
    `    let mm = (e / ${u(TK)}) * 4u;`, `    let k = k0 + e % ${u(TK)};`, `    let kc = min(k, ${u(K - 1)});`,
    `    tileA[(e % ${u(TK)}) * ${u(TM4)} + e / ${u(TK)}] = select(vec4f(0.0), vec4f(${rowsOf('mm').join(', ')}), k < ${u(K)});`,
    '  }',
    `  for (var e = t; e < ${u(TN4 * TK)}; e += ${u(T)}) {`,
    `    let k = k0 + e / ${u(TN4)};`, `    let kc = min(k, ${u(K - 1)});`,
    `    tileB[e] = select(vec4f(0.0), ${loadB4('kc', `n0 + (e % ${u(TN4)}) * 4u`)}, k < ${u(K)});`,
    '  }',
    '  workgroupBarrier();',
    `  for (var kk = 0u; kk < ${u(TK)}; kk++) {`,
    `    var a: array<vec4f, ${R4}>;`,
    `    for (var i = 0u; i < ${u(R4)}; i++) { a[i] = tileA[kk * ${u(TM4)} + i * ${u(GY)} + lid.y]; }`,
    `    var b: array<vec4f, ${C4}>;`,
    `    for (var j = 0u; j < ${u(C4)}; j++) { b[j] = tileB[kk * ${u(TN4)} + j * ${u(GX)} + lid.x]; }`,
    `    for (var i = 0u; i < ${u(TR)}; i++) {`,
    '      let av = vec4f(a[i / 4u][i % 4u]);',
    `      for (var j = 0u; j < ${u(C4)}; j++) { acc[i * ${u(C4)} + j] = fma(av, b[j], acc[i * ${u(C4)} + j]); }`,
    '    }',
    '  }',
    '  workgroupBarrier();',
    '}',
    ...vectorStores(s, t, 'acc'),
  ]);
}

/**
 * The vector tiles' write-out: row i of an invocation is m0 + ((i / 4) * GY + lid.y) * 4 + i % 4, its
 * column vector j starts at n0 + (j * GX + lid.x) * 4; `acc` holds TR x C4 vec4s, row-major. A loop,
 * so the source's store (with its epilogue) appears once in the kernel.
 */
export function vectorStores(s: TiledMatmulSource, t: TilesTiling, acc: string): string[] {
  const GX = t.tileN / t.threadCols, GY = t.tileM / t.threadRows, C4 = t.threadCols / 4;
  return [
    `for (var i = 0u; i < ${u(t.threadRows)}; i++) {`,
    `  let m = m0 + ((i / 4u) * ${u(GY)} + lid.y) * 4u + i % 4u;`,
    `  for (var j = 0u; j < ${u(C4)}; j++) {`,
    `    let nb = n0 + (j * ${u(GX)} + lid.x) * 4u;`,
    `    let v = ${acc}[i * ${u(C4)} + j];`,
    '    for (var c = 0u; c < 4u; c++) {',
    '      let n = nb + c;',
    `      if (m < ${u(s.M)} && n < ${u(s.N)}) { ${s.store('m', 'n', 'v[c]')} }`,
    '    }',
    '  }', '}',
  ];
}

/** A(m0 + mm + r, kc) for r = 0..3 (rows clamped to M - 1), and B(k, n..n+3) as one vec4f. */
export function vectorLoads(s: TiledMatmulSource) {
  const rowsOf = (mm: string) => [0, 1, 2, 3].map((r) => s.loadA(`min(m0 + ${mm} + ${r}u, ${u(s.M - 1)})`, 'kc', `${mm} + ${r}u`));
  const loadB4 = s.loadB4 ?? ((k: string, n: string) => `vec4f(${[0, 1, 2, 3].map((c) => s.loadB(k, `min(${n} + ${c}u, ${u(s.N - 1)})`)).join(', ')})`);
  return { rowsOf, loadB4 };
}

/** What a GEMM plan reads and writes, for any of the tile skeletons (the vector ones when `t.vector`). */
export function gemmTilesSource(g: GemmPlan, t: TilesTiling): TiledMatmulSource {
  const { M, N, K } = g;
  const TM = t.tileM, T = (t.tileM / t.threadRows) * (t.tileN / t.threadCols);
  const A = layoutOf(g.a, [M, K], undefined);
  // The vector variant reads B as vec4s along N where the view allows it.
  const bVec = t.vector ? layoutOf(g.b, [K, N], 1) : undefined;
  const B = bVec?.vec4 ? bVec : layoutOf(g.b, [K, N], undefined);
  const opt = {
    scale: g.scale && layoutOf(g.scale, [K], undefined), shift: g.shift && layoutOf(g.shift, [K], undefined),
    bias: g.bias && layoutOf(g.bias, [N], undefined), gate: g.gate && layoutOf(g.gate, [N], undefined),
    residual: g.residual && layoutOf(g.residual, [M, N], undefined),
  };
  const O = layoutOf(g.out, [M, N], undefined);
  const ops = [A, B, ...[opt.scale, opt.shift, opt.bias, opt.gate, opt.residual].filter((o): o is OperandLayout => !!o), O];
  const at = (o: OperandLayout, idx: string[]) => `${o.wgslName}[${offsetWgsl(o.wgslName.replace('_buf', 'Base'), idx, o.strides)}]`;

  const prelude = [...batchIndexWgsl(g.batch, 'wg.z'), ...ops.map((o) => `let ${o.wgslName.replace('_buf', 'Base')} = ${batchBaseWgsl(o)};`)];
  const shared: string[] = [];
  if (g.eps !== undefined) {
    // P invocations per row sum strided slices (shifted by the row's first element x), then one combines.
    // Rows are normalized as (a - x) * rstd - m1 * rstd, so the rounding of a large mean never enters.
    const P = Math.max(1, Math.floor(T / TM));
    shared.push(`var<workgroup> part1: array<f32, ${TM * P}>;`, `var<workgroup> part2: array<f32, ${TM * P}>;`,
      `var<workgroup> rowX: array<f32, ${TM}>;`, `var<workgroup> rowRstd: array<f32, ${TM}>;`,
      `var<workgroup> rowOff: array<f32, ${TM}>;`);
    prelude.push(`for (var e = t; e < ${u(TM * P)}; e += ${u(T)}) {`,
      `  let m = min(m0 + e / ${u(P)}, ${u(M - 1)});`,
      `  let x0 = ${at(A, ['m', '0u'])};`,
      '  var s1 = 0.0;', '  var s2 = 0.0;',
      `  for (var k = e % ${u(P)}; k < ${u(K)}; k += ${u(P)}) { let d = ${at(A, ['m', 'k'])} - x0; s1 += d; s2 += d * d; }`,
      '  part1[e] = s1;', '  part2[e] = s2;', '}', 'workgroupBarrier();',
      `for (var r = t; r < ${u(TM)}; r += ${u(T)}) {`,
      '  var s1 = 0.0;', '  var s2 = 0.0;',
      `  for (var p = 0u; p < ${u(P)}; p++) { s1 += part1[r * ${u(P)} + p]; s2 += part2[r * ${u(P)} + p]; }`,
      `  let m1 = s1 / ${K}.0;`,
      `  let rstd = inverseSqrt(max(s2 / ${K}.0 - m1 * m1, 0.0) + ${f32Literal(g.eps)});`,
      `  rowX[r] = ${at(A, [`min(m0 + r, ${u(M - 1)})`, '0u'])};`, '  rowRstd[r] = rstd;', '  rowOff[r] = -m1 * rstd;',
      '}', 'workgroupBarrier();');
  }
  return {
    M, N, K, batches: g.batch.reduce((a, b) => a * b, 1), prelude, shared,
    decls: [...ops.map((o, i) => declareBuffer(i, o, o === O)), activationWgsl(g.activation)],
    loadA: (m, k, mm) => {
      let v = at(A, [m, k]);
      if (g.eps !== undefined) v = `fma(${v} - rowX[${mm}], rowRstd[${mm}], rowOff[${mm}])`;
      if (opt.scale) v = `${v} * (1.0 + ${at(opt.scale, [k])})`;
      if (opt.shift) v = `${v} + ${at(opt.shift, [k])}`;
      return v;
    },
    loadB: (k, n) => at(B, [k, n]),
    loadB4: B.vec4 ? (k, n) => `b_buf[(${offsetWgsl('bBase', [k], [B.strides[0]])}) / 4u + min(${n}, ${u(N - 4)}) / 4u]` : undefined,
    store: (m, n, acc) => `${at(O, [m, n])} = ${applyWgsl(g.activation, acc, {
      bias: opt.bias && at(opt.bias, [n]), gate: opt.gate && at(opt.gate, [n]), residual: opt.residual && at(opt.residual, [m, n]),
    })};`,
  };
}
