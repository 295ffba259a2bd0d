/**
 * Backward of the attention kernel (attention.ts): o_i = Σ_j P_ij v_j, P_i = softmax_j(s_ij),
 * s_ij = scale q_i·k_j + bias[rel(i, j), head], over the keys j that query i sees (same window, same
 * Swin region, causal order, key mask). With dP_ij = dO_i·v_j and D_i = Σ_j P_ij dP_ij (= dO_i·o_i):
 *   dS_ij = P_ij (dP_ij − D_i)
 *   dq_i = scale Σ_j dS_ij k_j     dk_j = scale Σ_i dS_ij q_i     dv_j = Σ_i P_ij dO_i
 *   dbias[r, head] = Σ_{(i, j) at offset r} dS_ij
 * FlashAttention-2 style: scores are recomputed, the score matrix is never stored. Three kernels, run in
 * this order, each writing its outputs with `=` once per element (deterministic, no atomics):
 *  1. rows (per query row): the row's log-sum-exp, D and dq; lse and D go to the scratch buffer.
 *     Bindings: q, k, v, [relPosBias], [km], dO, then dQ, scratch. A row whose keys are all masked
 *     (keyMask) stores lse = D = 0 and dq = 0.
 *  2. keys (per key row; loops over the queries that see the key, and over the batch axes where dK/dV
 *     have stride 0, which it sums): dk and dv from the scratch's lse and D.
 *     Bindings: q, k, v, [relPosBias], [km], dO, scratch, then dK, dV (or one dKV, see sharedKVGrad).
 *  3. bias (only with dRelPosBias): the sum over the (query, key) pairs at each table entry's offset.
 *     Bindings: q, k, v, relPosBias, [km], dO, scratch, then dRelPosBias (subgroup variant: two kernels, see below).
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
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import {
  attentionBackwardScratch, baseOf, biasTerm, bindingsOf, commonOf, decls, decode, flatten, hash,
  loader, maskBaseOf, maskOps, place, prod, storer, subgroupBiasFits, tilingOf, type AttentionBackwardParams,
  type Common, type Op
} from './attention-backward-plan.ts';
import {
  biasPartialKernel, biasSumKernel, keysKernelSubgroup, rowsKernelSubgroup
} from './attention-backward-lanes.ts';
import { workgroupSumWgsl } from './reduce.ts';

export { attentionBackwardScratch, attentionBackwardTilingFor, type AttentionBackwardParams, type AttentionBackwardTiling } from './attention-backward-plan.ts';
export { attentionBackwardReference, type AttentionBackwardResult } from './attention-backward-reference.ts';

// ---------------------------------------------------------------- shared by the workgroup-memory kernels

/**
 * The head of a workgroup-memory kernel: bindings, sizes, the q, k, v and dO loaders, `extra` (storers,
 * workgroup arrays), then the entry point up to its flat workgroup index `wg`, bounds-checked.
 */
function tiledHead(c: Common, names: { name: string; write: boolean }[], sizes: { nq: number; nk: number; WG: number; T: number },
  total: number, extra: string[]): string[] {
  const { L } = c;
  return [
    ...decls(names),
    `const NQ = ${sizes.nq}u; const NK = ${sizes.nk}u; const DH4 = ${c.DH4}u; const WG = ${sizes.WG}u; const T = ${sizes.T}u;`,
    loader('q', L.views.q, c.dh), loader('k', L.views.k, c.dh), loader('v', L.views.v, c.dh), loader('dO', L.views.dO, c.dh),
    ...extra,
    `@compute @workgroup_size(${sizes.WG})`,
    GRID_MAIN,
    `let wg = ${GRID_WORKGROUP};`,
    `if (wg >= ${total}u) { return; }`,
  ];
}

/**
 * A loop over the other side's `count` rows (NQ or NK), T at a time: `stage` runs per element e of a
 * tile (row `row`, lane d) to fill workgroup memory, `body` per staged row `row`. Empty lines stay
 * empty (the callers drop them).
 */
function tileLoop(first: string, row: string, count: string, stage: string[], body: string[]): string[] {
  const indent = (l: string) => l && `    ${l}`;
  return [
    `for (var ${first} = 0u; ${first} < ${count}; ${first} += T) {`,
    `  for (var e = lid; e < T * DH4; e += WG) {`,
    ...stage.map(indent),
    `  }`,
    `  workgroupBarrier();`,
    `  for (var ${row} = 0u; ${row} < min(T, ${count} - ${first}); ${row}++) {`,
    ...body.map(indent),
    `  }`,
    `  workgroupBarrier();`,
    `}`];
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
  const keyLoop = (body: string[]) => tileLoop('j0', 'jj', 'NK', [
    `let jj = e / DH4; let d = e % DH4;`,
    `var koff = kb; var voff = vb;${L.keyMask ? ' var moff = mb;' : ''}`,
    ...place(L.kAxes, 'min(j0 + jj, NK - 1u)', 'k', [['koff', 'k'], ['voff', 'v'], ...maskOps(L, 'moff')], keyWin, masked, bias ? { radix: c.radix, query: false } : null),
    `kt[e] = ld_k(koff, d); vt[e] = ld_v(voff, d);`,
    L.keyMask ? `if (d == 0u) { kkeep[jj] = b_km[moff]; }` : '',
    masked ? `if (d == 0u) { kreg[jj] = kregion; }` : '',
    bias ? `if (d == 0u) { kbia[jj] = kbias; }` : '',
  ], [
    // explicit zeroing: Dawn + lavapipe kept a loop-body var's old value without it (see attention.ts)
    `var s = 0.0; var dp = 0.0;`,
    `for (var d = 0u; d < DH4; d++) { s += dot(qv[d], kt[jj * DH4 + d]); dp += dot(gv[d], vt[jj * DH4 + d]); }`,
    bias ? `s += ${biasTerm(c, 'qbias', 'kbia[jj]')};` : '',
    `let keep = ${[...(masked ? ['qregion == kreg[jj]'] : []), ...(plan.causal ? ['j0 + jj <= row'] : []),
      ...(L.keyMask ? ['kkeep[jj] != 0.0'] : [])].join(' && ') || 'true'};`,
    ...body,
  ]);
  const wgsl = [
    ...tiledHead(c, names, { nq, nk, WG, T }, total, [
      storer('dQ', 'dQ', L.views.dQ, c.dh),
      `var<workgroup> kt: array<vec4f, ${T * DH4}>;`, `var<workgroup> vt: array<vec4f, ${T * DH4}>;`,
      masked ? `var<workgroup> kreg: array<u32, ${T}>;` : '', bias ? `var<workgroup> kbia: array<u32, ${T}>;` : '',
      L.keyMask ? `var<workgroup> kkeep: array<f32, ${T}>;` : '',
    ]),
    `let tile = wg % ${tiles}u; let grp = wg / ${tiles}u;`,
    ...decode('grp', [...L.batch.map((b) => b.size), plan.heads, ...L.qAxes.map((a) => a.windows)], [...L.batch.map((_, i) => bname(i)), 'head', ...win], 'grem'),
    `let kb = ${baseOf(L, 'k', bname)}; let vb = ${baseOf(L, 'v', bname)};`,
    L.keyMask ? `let mb = ${maskBaseOf(L, bname)};` : '',
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
    // every key masked (l = 0): lse and D are 0, and so is dq
    L.keyMask ? `let lse = select(0.0, m + log(l), l > 0.0); let dd = select(0.0, a / l, l > 0.0);` : `let lse = m + log(l); let dd = a / l;`,
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
    ...(L.keyMask ? [`let kmv = b_km[${maskBaseOf(L, bname)} + mtok];`] : []),
    ...tileLoop('i0', 'ii', 'NQ', [
      `let ii = e / DH4; let d = e % DH4; let qi = min(i0 + ii, NQ - 1u);`,
      `var qoff = qb; var gooff = dob;`,
      ...place(L.qAxes, 'qi', 'q', [['qoff', 'q'], ['gooff', 'dO']], (i) => win[i], masked, bias ? { radix: c.radix, query: true } : null),
      `qt[e] = ld_q(qoff, d); gt[e] = ld_dO(gooff, d);`,
      `if (d == 0u) { lt[ii] = b_scratch[(qgrp * NQ + qi) * 2u]; dt[ii] = b_scratch[(qgrp * NQ + qi) * 2u + 1u];` +
        `${masked ? ' qreg[ii] = qregion;' : ''}${bias ? ' qbia[ii] = qbias;' : ''} }`,
    ], [
      `var s = 0.0; var dp = 0.0;`,
      `for (var d = 0u; d < DH4; d++) { s += dot(qt[ii * DH4 + d], kv[d]); dp += dot(gt[ii * DH4 + d], vv[d]); }`,
      bias ? `s += ${biasTerm(c, 'qbia[ii]', 'kbias')};` : '',
      `let pj = select(0.0, exp(s - lt[ii]), ${[...(masked ? ['qreg[ii] == kregion'] : []), ...(plan.causal ? ['row <= i0 + ii'] : []),
        ...(L.keyMask ? ['kmv != 0.0'] : [])].join(' && ') || 'true'});`,
      `let ds = pj * (dp - dt[ii]);`,
      `for (var d = 0u; d < DH4; d++) { dk[d] += ds * qt[ii * DH4 + d]; dv[d] += pj * gt[ii * DH4 + d]; }`,
    ])];
  const wgsl = [
    ...tiledHead(c, names, { nq, nk, WG, T }, total, [
      storer('dK', p.sharedKVGrad ? 'dKV' : 'dK', L.views.dK, c.dh), storer('dV', p.sharedKVGrad ? 'dKV' : 'dV', L.views.dV, c.dh),
      `var<workgroup> qt: array<vec4f, ${T * DH4}>;`, `var<workgroup> gt: array<vec4f, ${T * DH4}>;`,
      `var<workgroup> lt: array<f32, ${T}>;`, `var<workgroup> dt: array<f32, ${T}>;`,
      masked ? `var<workgroup> qreg: array<u32, ${T}>;` : '', bias ? `var<workgroup> qbia: array<u32, ${T}>;` : '',
    ]),
    `let tile = wg % ${tiles}u;`,
    ...decode(`wg / ${tiles}u`, groupSizes, [...kept.map(bname), 'head', ...win], 'grem'),
    `let row = tile * WG + lid;`,
    `var ktok = 0u; var vtok = 0u; var dkoff = ${baseOf(L, 'dK', bname)}; var dvoff = ${baseOf(L, 'dV', bname)};${L.keyMask ? ' var mtok = 0u;' : ''}`,
    ...place(L.kAxes, 'min(row, NK - 1u)', 'k', [['ktok', 'k'], ['vtok', 'v'], ['dkoff', 'dK'], ['dvoff', 'dV'], ...maskOps(L, 'mtok')], keyWin, masked,
      bias ? { radix: c.radix, query: false } : null),
    `var kv: array<vec4f, ${DH4}>; var vv: array<vec4f, ${DH4}>; var dk: array<vec4f, ${DH4}>; var dv: array<vec4f, ${DH4}>;`,
    `for (var d = 0u; d < DH4; d++) { dk[d] = vec4f(0.0); dv[d] = vec4f(0.0); }`,
    // the batch entries that share this key's gradient element (stride 0 in dK/dV), summed in order
    ...(summed.length ? [`for (var cs = 0u; cs < ${nsum}u; cs++) {`, ...body.map((l) => `  ${l}`), `}`] : ['{', ...body.map((l) => `  ${l}`), '}']),
    `if (row < NK) { for (var d = 0u; d < DH4; d++) { st_dK(dkoff, d, dk[d] * ${c.scale}); st_dV(dvoff, d, dv[d]); } }`,
    `}`].filter((x) => x !== '').join('\n');
  return { key: `attention-backward-keys:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total) };
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
  const offset = (op: Exclude<Op, 'km'>, px: string) => [baseOf(L, op, bname), ...tok(px, op)].join(' + ');
  const coords = (px: string) => axes.flatMap((a, i) => [
    `let ${px}c${i} = ${a.windows > 1 ? `${win[i]} * ${a.w}u + ` : ''}${px}p${i};`,
    `let ${px}g${i} = ${a.s > 0 ? `(${px}c${i} + ${a.s}u) % ${a.n}u` : `${px}c${i}`};`]);
  const region = (px: string) => axes.map((a, i) =>
    (a.s > 0 ? `select(select(2u, 1u, ${px}c${i} < ${a.n - a.s}u), 0u, ${px}c${i} < ${a.n - a.w}u) * ${3 ** i}u` : '0u')).join(' + ');
  // A table of a larger window than the (clamped) one: in-window indices are read over the bias
  // window, so the pairs at an entry are the query indices i whose key i - (the offset flattened
  // over the bias window) keeps every bias coordinate inside it.
  const clamped = axes.some((a) => a.bw !== a.w);
  const pairs = clamped ? [
    ...decode('entry', axes.map((a) => 2 * a.bw - 1), axes.map((_, i) => `e${i}`), 'erem'),
    ...axes.map((a, i) => `let o${i} = i32(e${i}) - ${a.bw - 1}i;`),
    `let oflat = ${axes.map((_, i) => `o${i} * ${prod(axes.slice(i + 1).map((a) => a.bw))}i`).join(' + ')};`,
    `let items = ${nbatch * L.nwin * plan.nq}u;`,
  ] : [
    ...decode('entry', axes.map((a) => 2 * a.w - 1), axes.map((_, i) => `e${i}`), 'erem'),
    // query minus key offset per axis; the valid query positions are [max(0, o), w + min(0, o))
    ...axes.map((a, i) => `let o${i} = i32(e${i}) - ${a.w - 1}i; let lo${i} = u32(max(o${i}, 0i)); let n${i} = ${a.w}u - u32(abs(o${i}));`),
    `let items = ${nbatch * L.nwin}u * ${axes.map((_, i) => `n${i}`).join(' * ')};`,
  ];
  const positions = clamped ? [
    `  let qi = it % NQ; r = it / NQ;`,
    `  let kj = i32(qi) - oflat;`,
    ...decode('qi', axes.map((a) => a.bw), axes.map((_, i) => `bq${i}`), 'bqrem').map((l) => `  ${l}`),
    `  if (kj < 0i || kj >= i32(NQ)${axes.map((a, i) => ` || i32(bq${i}) - o${i} < 0i || i32(bq${i}) - o${i} >= ${a.bw}i`).join('')}) { continue; }`,
    ...decode('qi', axes.map((a) => a.w), axes.map((_, i) => `qp${i}`), 'qprem').map((l) => `  ${l}`),
    ...decode('u32(kj)', axes.map((a) => a.w), axes.map((_, i) => `kp${i}`), 'kprem').map((l) => `  ${l}`),
  ] : axes.map((_, i) => axes.length - 1 - i).map((i) => `  let x${i} = r % n${i}; r = r / n${i};`);
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
    ...pairs,
    `let tb = b_relPosBias[${rpb.offset}u + entry * ${rpb.strides[0]}u + head * ${rpb.strides[1]}u];`,
    `var acc = 0.0;`,
    `for (var it = lid; it < items; it += WG) {`,
    `  var r = it;`,
    ...positions,
    `  let wf = r % ${L.nwin}u; let bf = r / ${L.nwin}u;`,
    ...decode('wf', winSizes, win, 'wrem').map((l) => `  ${l}`),
    ...decode('bf', L.batch.map((b) => b.size), L.batch.map((_, i) => bname(i)), 'brem').map((l) => `  ${l}`),
    ...(clamped ? [] : axes.map((_, i) => `  let qp${i} = lo${i} + x${i}; let kp${i} = u32(i32(qp${i}) - o${i});`)),
    ...coords('q').map((l) => `  ${l}`), ...coords('k').map((l) => `  ${l}`),
    `  let grp = (bf * ${plan.heads}u + head) * ${L.nwin}u + wf;`,
    `  let qrow = ${flatten(axes.map((_, i) => `qp${i}`), axes.map((a) => a.w))};`,
    `  let qoff = ${offset('q', 'q')}; let gooff = ${offset('dO', 'q')};`,
    `  let koff = ${offset('k', 'k')}; let voff = ${offset('v', 'k')};`,
    `  var s = 0.0; var dp = 0.0;`,
    `  for (var d = 0u; d < DH4; d++) { s += dot(ld_q(qoff, d), ld_k(koff, d)); dp += dot(ld_dO(gooff, d), ld_v(voff, d)); }`,
    `  let st = (grp * NQ + qrow) * 2u;`,
    `  let pj = exp(s * ${c.scale} + tb - b_scratch[st]);`,
    plan.causal ? `  let krow = ${flatten(axes.map((_, i) => `kp${i}`), axes.map((a) => a.w))};` : '',
    L.keyMask ? `  let kmv = b_km[${[maskBaseOf(L, bname), ...tok('k', 'km')].join(' + ')}];` : '',
    `  acc += select(0.0, pj * (dp - b_scratch[st + 1u]), ${[...(masked ? [`${region('q')} == ${region('k')}`] : []), ...(plan.causal ? ['krow <= qrow'] : []),
      ...(L.keyMask ? ['kmv != 0.0'] : [])].join(' && ') || 'true'});`,
    `}`,
    `let total = workgroup_sum(acc, lid);`,
    `if (lid == 0u) { b_dRelPosBias[${drpb.offset}u + entry * ${drpb.strides[0]}u + head * ${drpb.strides[1]}u] = total; }`,
    `}`].filter((x) => x !== '').join('\n');
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
