// The GEMM kernel for SIMD software adapters (lavapipe/llvmpipe). Facts measured there (Mesa 25.0):
// every storage-buffer load instruction inside a loop costs ~100 cycles per 8-lane SIMD group
// (a per-lane loop with bounds checks), uniform addresses included, while a subgroup broadcast or
// shuffle costs a few cycles and workgroup barriers cost coroutine switches. So: one subgroup per
// workgroup; each A value is loaded by exactly one lane and broadcast to the others; each lane owns
// 4 * colVecs columns whose B values it loads as vec4s; accumulators live in registers (and spill).
// Where the time goes at 1024^3, rows 32, colVecs 1 (perf samples of the JIT code, Mesa 25.0.7 with
// LLVM 15): the JIT emits no FMA instructions, so fma() is vmulps + vaddps (~25%); the per-lane load
// loops for A and B, with a compare, branch, broadcast and blend per element, ~35-40%; spill moves
// ~15%; the subgroup broadcasts ~9%. Tried and slower: more rows or colVecs (more spills), A read
// at uniform addresses (6 GFLOP/s), the k loop unrolled twice (1.5-2x slower); B read through a
// texture was within the noise.
import { applyWgsl, activationWgsl } from './epilogue.ts';
import { f32Literal } from './expr.ts';
import type { GemmPlan, LanesTiling, Operand } from './gemm-plan.ts';
import { batchBaseWgsl, batchIndexWgsl, declareBuffer, offsetWgsl, vec4Along, type OperandLayout } from './operand-wgsl.ts';

export interface GemmWgsl { wgsl: string; dispatch: [number, number, number]; features?: string[] }

const u = (n: number) => `${n}u`;

/** The layout of a plan operand; `vecAxis` is the trailing axis read as vec4 when the view allows it. */
export function layoutOf(o: Operand, sizes: number[], vecAxis: number | undefined): OperandLayout {
  const vec4 = vecAxis !== undefined && vec4Along(o.view.offset, o.batchStrides, o.strides, sizes, vecAxis);
  return { wgslName: `${o.name}_buf`, offset: o.view.offset, batchStrides: o.batchStrides, strides: o.strides, sizes, vec4 };
}

/** Checks a dispatch against the 65535-per-dimension limit every adapter has. */
export function checkGrid(dispatch: [number, number, number], what: string): [number, number, number] {
  if (dispatch.some((d) => d > 65535)) throw new Error(`${what}: dispatch [${dispatch}] exceeds 65535 workgroups in a dimension`);
  return dispatch;
}

export function gemmLanesWgsl(g: GemmPlan, t: LanesTiling): GemmWgsl {
  const { M, N, K } = g;
  const L = t.lanes, R = t.rows, CV = t.colVecs, Q = R / L;
  const TN = 4 * L * CV;
  const A = layoutOf(g.a, [M, K], 1);
  const bAlongN = layoutOf(g.b, [K, N], 1);
  const B = bAlongN.vec4 ? bAlongN : layoutOf(g.b, [K, N], 0);
  const bMode = bAlongN.vec4 ? 'n' : B.vec4 ? 'k' : 'scalar';
  const opt = {
    scale: g.scale && layoutOf(g.scale, [K], 0), shift: g.shift && layoutOf(g.shift, [K], 0),
    bias: g.bias && layoutOf(g.bias, [N], 0), gate: g.gate && layoutOf(g.gate, [N], 0),
    residual: g.residual && layoutOf(g.residual, [M, N], 1),
  };
  const O = layoutOf(g.out, [M, N], 1);
  const ops = [A, B, ...[opt.scale, opt.shift, opt.bias, opt.gate, opt.residual].filter((o): o is OperandLayout => !!o), O];
  const decls = ops.map((o, i) => declareBuffer(i, o, o === O));
  const kMask = K % 4 !== 0;

  // Helpers: 4 consecutive values along an axis, with edge clamps (rows/columns past the end are never
  // stored) and zeros past K (so a partial last step adds nothing).
  const fns: string[] = [];
  const [sAm, sAk] = A.strides;
  fns.push(A.vec4
    ? `fn ldA(row: u32, k: u32) -> vec4f { return a_buf[row / 4u + k / 4u]; }`
    : `fn ldA(row: u32, k: u32) -> vec4f {\n  return vec4f(${[0, 1, 2, 3].map((j) => `a_buf[${offsetWgsl('row', [kMask ? `min(k + ${j}u, ${K - 1}u)` : `k + ${j}u`], [sAk])}]`).join(', ')});\n}`);
  const [sBk, sBn] = B.strides;
  const kZero = (j: string, v: string) => (kMask ? `select(vec4f(0.0), ${v}, k + ${j} < ${u(K)})` : v);
  if (bMode === 'n') {
    const kk = kMask ? `min(k, ${u(K - 1)})` : 'k';
    fns.push(`fn ldB(base: u32, k: u32, n: u32) -> vec4f { return b_buf[(${offsetWgsl('base', [kk], [sBk])}) / 4u + min(n, ${u(N - 4)}) / 4u]; }`);
  } else if (bMode === 'k') {
    fns.push(`fn ldB(base: u32, k: u32, n: u32) -> vec4f { return b_buf[(${offsetWgsl('base', [`min(n, ${u(N - 1)})`], [sBn])}) / 4u + k / 4u]; }`);
  } else {
    const kk = kMask ? `min(k, ${u(K - 1)})` : 'k';
    fns.push(`fn ldB(base: u32, k: u32, n: u32) -> vec4f {\n  let r = ${offsetWgsl('base', [kk], [sBk])};\n  return vec4f(${[0, 1, 2, 3].map((i) => `b_buf[${offsetWgsl('r', [`min(n + ${i}u, ${u(N - 1)})`], [sBn])}]`).join(', ')});\n}`);
  }
  // A vector operand over one trailing axis (scale/shift over K, bias/gate over N), clamped at the end.
  const vecLoader = (name: string, o: OperandLayout, size: number) => (o.vec4
    ? `fn ld_${name}(base: u32, i: u32) -> vec4f { return ${o.wgslName}[base / 4u + min(i, ${u(size - 4)}) / 4u]; }`
    : `fn ld_${name}(base: u32, i: u32) -> vec4f {\n  return vec4f(${[0, 1, 2, 3].map((j) => `${o.wgslName}[${offsetWgsl('base', [`min(i + ${j}u, ${u(size - 1)})`], o.strides)}]`).join(', ')});\n}`);
  if (opt.scale) fns.push(vecLoader('scale', opt.scale, K));
  if (opt.shift) fns.push(vecLoader('shift', opt.shift, K));
  if (opt.bias) fns.push(vecLoader('bias', opt.bias, N));
  if (opt.gate) fns.push(vecLoader('gate', opt.gate, N));
  // Rows of [M, N] operands (residual, out): `base` is the row's element offset.
  const [sOm, sOn] = O.strides;
  if (opt.residual) {
    const Rs = opt.residual;
    fns.push(Rs.vec4
      ? `fn ld_residual(base: u32, n: u32) -> vec4f { return residual_buf[base / 4u + min(n, ${u(N - 4)}) / 4u]; }`
      : `fn ld_residual(base: u32, n: u32) -> vec4f {\n  return vec4f(${[0, 1, 2, 3].map((i) => `residual_buf[${offsetWgsl('base', [`min(n + ${i}u, ${u(N - 1)})`], [Rs.strides[1]])}]`).join(', ')});\n}`);
  }
  fns.push(O.vec4
    ? `fn st_out(base: u32, n: u32, v: vec4f) { if (n < ${u(N)}) { out_buf[base / 4u + n / 4u] = v; } }`
    : `fn st_out(base: u32, n: u32, v: vec4f) {\n${[0, 1, 2, 3].map((i) => `  if (n + ${i}u < ${u(N)}) { out_buf[${offsetWgsl('base', [`n + ${i}u`], [sOn])}] = v[${i}]; }`).join('\n')}\n}`);

  const body: string[] = [];
  body.push(...batchIndexWgsl(g.batch, 'wg.z'));
  // Workgroups run in blocks of GROUP row tiles: within a block the row tiles vary fastest, so
  // neighbours share one B column strip while it is in cache and the block's A rows stay in cache across
  // all column strips (measured on lavapipe at 1024^3: ~10% less worker time than a plain 2-D grid,
  // about what reading no fresh A rows at all saves). A grid too large for one dimension stays 2-D.
  const RT = Math.ceil(M / R), CT = Math.ceil(N / TN), GROUP = 8;
  const blocked = RT > GROUP && CT > 1 && RT * CT <= 65535;
  if (blocked) {
    body.push(`let blk = wg.x / ${u(GROUP * CT)};`, `let blkRows = min(${u(GROUP)}, ${u(RT)} - blk * ${u(GROUP)});`,
      `let inBlk = wg.x - blk * ${u(GROUP * CT)};`,
      `let m0 = (blk * ${u(GROUP)} + inBlk % blkRows) * ${u(R)};`, `let n0 = ((inBlk / blkRows) * ${u(L)} + lane) * ${u(4 * CV)};`);
  } else {
    body.push(`let m0 = wg.x * ${u(R)};`, `let n0 = (wg.y * ${u(L)} + lane) * ${u(4 * CV)};`);
  }
  for (const o of ops) body.push(`let ${o.wgslName.replace('_buf', 'Base')} = ${batchBaseWgsl(o)};`);
  for (let q = 0; q < Q; q++) body.push(`let ar${q} = ${offsetWgsl('aBase', [`min(m0 + ${u(q * L)} + lane, ${u(M - 1)})`], [sAm])};`);

  const norm = g.eps !== undefined;
  if (norm) {
    // The layer norm in the same pass as the product, no second read of A: with d = a - x (x: the
    // row's first element, so d stays small for rows whose mean is large against their spread),
    // m1 = mean(d), g = 1 + scale and h = shift,
    //   sum_k ((d_k - m1) * rstd * g_k + h_k) B[k, n] = rstd * (sum_k d_k g_k B[k, n] - m1 * c1[n]) + c2[n]
    // with the column sums c1 = sum_k g_k B[k, n] and c2 = sum_k h_k B[k, n] each lane keeps for its
    // columns, and the row sums of d and d^2 each lane keeps for the rows it loads.
    for (let q = 0; q < Q; q++) body.push(`let x${q} = ldA(ar${q}, 0u).x;`, `var s1_${q} = vec4f(0.0);`, `var s2_${q} = vec4f(0.0);`);
    for (let v = 0; v < CV; v++) body.push(`var c1_${v} = vec4f(0.0);`, ...(opt.shift ? [`var c2_${v} = vec4f(0.0);`] : []));
  }

  for (let r = 0; r < R; r++) for (let v = 0; v < CV; v++) body.push(`var acc${r}_${v} = vec4f(0.0);`);
  if (opt.scale || opt.shift) {
    // Scale and shift values are loaded a chunk per lane and shuffled to the steps that use them.
    body.push(`for (var k0 = 0u; k0 < ${u(K)}; k0 += ${u(4 * L)}) {`);
    if (opt.scale) body.push(`  let gChunk = vec4f(1.0) + ld_scale(scaleBase, k0 + 4u * lane);`);
    if (opt.shift) body.push(`  let hChunk = ld_shift(shiftBase, k0 + 4u * lane);`);
    body.push(`  let steps = min(${u(L)}, (${u(K)} - k0 + 3u) / 4u);`, '  for (var s = 0u; s < steps; s++) {', '    let k = k0 + 4u * s;');
  } else {
    // Without them one flat loop is cheaper: measured on lavapipe at 1024^3, the nested loop with its
    // variable trip count cost ~10% more worker CPU time.
    body.push('{', `  for (var k = 0u; k < ${u(K)}; k += 4u) {`);
  }
  if (opt.scale) body.push('    let gk = subgroupShuffle(gChunk, s);');
  if (opt.shift) body.push('    let hk = subgroupShuffle(hChunk, s);');
  for (let q = 0; q < Q; q++) {
    let a = `ldA(ar${q}, k)`;
    if (norm) {
      const d = `${a} - vec4f(x${q})`;
      body.push(`    let d${q} = ${kMask ? `select(vec4f(0.0), ${d}, vec4u(k) + vec4u(0u, 1u, 2u, 3u) < vec4u(${u(K)}))` : d};`,
        `    s1_${q} += d${q};`, `    s2_${q} = fma(d${q}, d${q}, s2_${q});`);
      a = opt.scale ? `d${q} * gk` : `d${q}`;
    } else if (opt.scale && opt.shift) a = `fma(${a}, gk, hk)`;
    else if (opt.scale) a = `${a} * gk`;
    else if (opt.shift) a = `${a} + hk`;
    body.push(`    let a${q} = ${a};`);
  }
  if (bMode === 'k') {
    for (let c = 0; c < 4 * CV; c++) body.push(`    let bc${c} = ldB(bBase, k, n0 + ${u(c)});`);
    for (let j = 0; j < 4; j++) for (let v = 0; v < CV; v++) {
      body.push(`    let b${j}_${v} = vec4f(${[0, 1, 2, 3].map((i) => `bc${4 * v + i}[${j}]`).join(', ')});`);
    }
  } else {
    for (let j = 0; j < 4; j++) for (let v = 0; v < CV; v++) body.push(`    let b${j}_${v} = ${kZero(`${j}u`, `ldB(bBase, k + ${u(j)}, n0 + ${u(4 * v)})`)};`);
  }
  if (norm) {
    // the column sums of g * B and h * B over this step's 4 rows of B
    const weighted = (acc: string, w: string, v: number) =>
      ['x', 'y', 'z', 'w'].reduceRight((e, c, j) => `fma(b${j}_${v}, vec4f(${w}.${c}), ${e})`, acc);
    for (let v = 0; v < CV; v++) {
      body.push(`    c1_${v} = ${opt.scale ? weighted(`c1_${v}`, 'gk', v) : `c1_${v} + b0_${v} + b1_${v} + b2_${v} + b3_${v}`};`);
      if (opt.shift) body.push(`    c2_${v} = ${weighted(`c2_${v}`, 'hk', v)};`);
    }
  }
  for (let r = 0; r < R; r++) {
    body.push(`    { let a = subgroupBroadcast(a${Math.floor(r / L)}, ${u(r % L)});`);
    for (let v = 0; v < CV; v++) {
      let e = `acc${r}_${v}`;
      for (const [j, c] of ['x', 'y', 'z', 'w'].entries()) e = `fma(vec4f(a.${c}), b${j}_${v}, ${e})`;
      body.push(`      acc${r}_${v} = ${e};`);
    }
    body.push('    }');
  }
  body.push('  }', '}');

  // Epilogue: per-column operands once per lane, then a loop over the rows. The accumulators are
  // copied into an array for it: emitting the (inlined, per-lane) stores once instead of once per row
  // keeps the compile time of big tiles in check, at the cost of one pass through memory.
  for (let v = 0; v < CV; v++) {
    if (opt.bias) body.push(`let bias${v} = ld_bias(biasBase, n0 + ${u(4 * v)});`);
    if (opt.gate) body.push(`let gate${v} = ld_gate(gateBase, n0 + ${u(4 * v)});`);
  }
  if (norm) {
    // each row's mean of d and rstd, from the lane that loaded it, for the row loop
    for (let q = 0; q < Q; q++) {
      body.push(`let m1_${q} = dot(s1_${q}, vec4f(1.0)) / ${K}.0;`,
        `let rstd${q} = inverseSqrt(max(dot(s2_${q}, vec4f(1.0)) / ${K}.0 - m1_${q} * m1_${q}, 0.0) + ${f32Literal(g.eps!)});`);
    }
    body.push(`var stats: array<vec2f, ${R}>;`);
    for (let r = 0; r < R; r++) {
      const [q, l] = [Math.floor(r / L), u(r % L)];
      body.push(`stats[${r}] = vec2f(subgroupBroadcast(m1_${q}, ${l}), subgroupBroadcast(rstd${q}, ${l}));`);
    }
  }
  body.push(`var accs: array<vec4f, ${R * CV}>;`);
  for (let r = 0; r < R; r++) for (let v = 0; v < CV; v++) body.push(`accs[${r * CV + v}] = acc${r}_${v};`);
  body.push(`for (var r = 0u; r < min(${u(R)}, ${u(M)} - m0); r++) {`, `  let orow = ${offsetWgsl('outBase', ['m0 + r'], [sOm])};`);
  if (opt.residual) body.push(`  let rrow = ${offsetWgsl('residualBase', ['m0 + r'], [opt.residual.strides[0]])};`);
  if (norm) body.push('  let st = stats[r];');
  for (let v = 0; v < CV; v++) {
    const n = `n0 + ${u(4 * v)}`;
    let acc = `accs[r * ${u(CV)} + ${u(v)}]`;
    if (norm) acc = `(fma(vec4f(-st.x), c1_${v}, ${acc}) * st.y${opt.shift ? ` + c2_${v}` : ''})`;
    const val = applyWgsl(g.activation, acc, {
      bias: opt.bias && `bias${v}`, gate: opt.gate && `gate${v}`, residual: opt.residual && `ld_residual(rrow, ${n})`,
    }, true);
    body.push(`  st_out(orow, ${n}, ${val});`);
  }
  body.push('}');

  const wgsl = ['enable subgroups;', ...decls, activationWgsl(g.activation, true), ...fns,
    `@compute @workgroup_size(${L})`,
    'fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {',
    ...body.map((l) => `  ${l}`), '}', ''].join('\n');
  const batches = g.batch.reduce((a, b) => a * b, 1);
  return { wgsl, dispatch: checkGrid(blocked ? [RT * CT, 1, batches] : [RT, CT, batches], 'gemm'), features: ['subgroups'] };
}
