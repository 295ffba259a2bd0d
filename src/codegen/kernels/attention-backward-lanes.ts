// The subgroup-broadcast variant of the attention backward for CPU adapters: lanes load rows once
// per subgroup and share them by broadcast (attention-backward.ts states the contract).
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import {
  baseOf, biasTerm, bindingsOf, decls, decode, fail, flatten, hash, loader, maskBaseOf, maskOps, place, prod, range,
  storer, type Common, type Layout, type Op
} from './attention-backward-plan.ts';
import { type AttentionPlan } from './attention.ts';
import { type View } from './view.ts';

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
export const vec4Ok = (v: View, dh: number) => dh % 4 === 0 && v.strides.at(-1) === 1 && v.offset % 4 === 0 && v.strides.slice(0, -1).every((s) => s % 4 === 0);

/** One vec4 load per slice where the layout allows it (a quarter of the load instructions). */
export const vecLoader = (op: Op, v: View, dh: number) =>
  (vec4Ok(v, dh) ? `fn ld_${op}(base: u32, i: u32) -> vec4f { return b_${op}[(base >> 2u) + i]; }` : loader(op, v, dh));
export const vecStorer = (op: Op, buf: string, v: View, dh: number) =>
  (vec4Ok(v, dh) ? `fn st_${op}(base: u32, i: u32, x: vec4f) { b_${buf}[(base >> 2u) + i] = x; }` : storer(op, buf, v, dh));

/** Declarations with an element type per binding (f32 unless given). */
export const typedDecls = (names: { name: string; write: boolean }[], types: Record<string, string>) =>
  names.map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.write ? 'read_write' : 'read'}> b_${b.name}: array<${types[b.name] ?? 'f32'}>;`);

export function subgroupTilingOf(c: Common) {
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
export const bcast = (S: number, DH4: number) => (src: string, t: number, d: number) =>
  `subgroupBroadcast(${src}${Math.floor((t * DH4 + d) / S)}, ${(t * DH4 + d) % S}u)`;

/** select chain picking `name(d)` for the loop's d (unrolled names read in a loop) */
export const pickOf = (DH4: number) => (name: (d: number) => string) =>
  range(DH4).slice(1).reduce((acc, d) => `select(${acc}, ${name(d)}, d == ${d}u)`, name(0));

/**
 * Rows kernel, subgroup variant, in one pass over the keys: with online max m, e_j = e^(s_j − m),
 * l = Σ e_j, a = Σ e_j dp_j, A = Σ e_j dp_j k_j and B = Σ e_j k_j (rescaled together once per tile),
 * D = a / l and dq = scale (A − D B) / l, which equals scale Σ_j P_j (dp_j − D) k_j and rounds on
 * the same scale, Σ_j P_j (|dp_j| + |D|) |k_j|.
 */
export function rowsKernelSubgroup(c: Common): KernelSpec {
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
    lines.push(`let e${i} = min(lane + ${i * S}u, ${T * DH4 - 1}u); var koff${i} = kb; var voff${i} = vb;${L.keyMask ? ` var moff${i} = mb;` : ''}`,
      ...place(L.kAxes, `min(j0 + e${i} / DH4, NK - 1u)`, `s${i}_`, [[`koff${i}`, 'k'], [`voff${i}`, 'v'], ...maskOps(L, `moff${i}`)], keyWin, masked,
        bias ? { radix: c.radix, query: false } : null),
      `let kl${i} = ld_k(koff${i}, e${i} % DH4); let vl${i} = ld_v(voff${i}, e${i} % DH4);${L.keyMask ? ` let s${i}_keep = b_km[moff${i}];` : ''}`);
  }
  // scores and dP per (row, key); broadcast values are consumed as soon as they exist (fewer live registers)
  for (const t of keys) {
    if (masked) lines.push(`let kreg${t} = ${codeOf('region', t)};`);
    if (bias) lines.push(`let kbia${t} = ${codeOf('bias', t)};`);
    if (L.keyMask) lines.push(`let kkeep${t} = ${codeOf('keep', t)};`);
    lines.push(rows.map((r) => `var x${r}_${t} = 0.0; var y${r}_${t} = 0.0;`).join(' '));
    for (const d of ds) {
      lines.push(`{ let k = ${bc('kl', t, d)}; let v = ${bc('vl', t, d)}; ` +
        `${rows.map((r) => `x${r}_${t} += dot(q${r}_${d}, k); y${r}_${t} += dot(g${r}_${d}, v);`).join(' ')} }`);
    }
  }
  for (const r of rows) {
    for (const t of keys) {
      const conds = [...(nk % T ? [`j0 + ${t}u < NK`] : []), ...(masked ? [`q${r}_region == kreg${t}`] : []),
        ...(plan.causal ? [`j0 + ${t}u <= row${r}`] : []), ...(L.keyMask ? [`kkeep${t} != 0.0`] : [])];
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
      // with a key mask, a row whose keys are all masked (l = 0) gets lse = D = 0 and dq = 0
      L.keyMask ? `  let some = l${r} > 0.0; let dd = select(0.0, a${r} / l${r}, some); let f = select(0.0, ${c.scale} / l${r}, some);`
        : `  let dd = a${r} / l${r}; let f = ${c.scale} / l${r};`,
      `  for (var d = 0u; d < DH4; d++) { st_dQ(dqoff${r}, d, (${pick((d) => `A${r}_${d}`)} - dd * ${pick((d) => `B${r}_${d}`)}) * f); }`,
      `  b_scratch[grp * NQ + row${r}] = vec2f(${L.keyMask ? `select(0.0, m${r} + log(l${r}), some)` : `m${r} + log(l${r})`}, dd);`,
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
    ...(L.keyMask ? [`let mb = ${maskBaseOf(L, bname)};`] : []),
    `let qb = ${baseOf(L, 'q', bname)}; let dob = ${baseOf(L, 'dO', bname)}; let dqb = ${baseOf(L, 'dQ', bname)};`,
    ...lines,
    `}`].join('\n');
  return { key: `attention-backward-rows:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(total), features: ['subgroups'] };
}

/** Sizes and names shared by the kernels whose invocations own key rows and broadcast query rows. */
export interface KeySide {
  c: Common; S: number; R: number; T: number; win: string[]; bname: (i: number) => string;
  /** vec2f (lse, D) of a query row from the scratch */
  stats: (row: string) => string;
}

/** Key row r's position, offsets (added to the given variables) and registers k (scaled), v. */
export function keyRowSetup(k: KeySide, r: number, rowExpr: string, ops: [string, Op][]): string[] {
  const { c } = k;
  const keyWin = (i: number) => (c.L.plan.cross ? '0u' : k.win[i]);
  return [`let row${r} = ${rowExpr};`, ...ops.map(([v]) => `var ${v}${r} = 0u;`),
    ...place(c.L.kAxes, `min(row${r}, NK - 1u)`, `k${r}_`, ops.map(([v, op]) => [`${v}${r}`, op]), keyWin, c.masked,
      c.bias ? { radix: c.radix, query: false } : null)];
}

/** Loads key row r's k (scaled) and v into registers k{r}_{d}, v{r}_{d} (declared by the caller). */
export const keyRowLoad = (k: KeySide, r: number, kOff: string, vOff: string) =>
  `for (var d = 0u; d < DH4; d++) { let x = ld_k(${kOff}, d) * ${k.c.scale}; let y = ld_v(${vOff}, d); ` +
  `${range(k.c.DH4).map((d) => `k${r}_${d} = select(k${r}_${d}, x, d == ${d}u); v${r}_${d} = select(v${r}_${d}, y, d == ${d}u);`).join(' ')} }`;

/**
 * One step over query rows i0 .. i0 + T − 1 (qb, dob, qgrp and i0 in scope): the lanes load their q and
 * dO slices and lse and D, and per query t and key row r give p{r}_{t} = P and z{r}_{t} = dS
 * (masked pairs and queries past NQ: 0), followed by `consume(t)`, which may broadcast q and dO again.
 */
export function queryStep(k: KeySide, consume: (t: number) => string[]): string[] {
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
      const conds = [...(nq % T ? [`i0 + ${t}u < NQ`] : []), ...(masked ? [`qreg${t} == k${r}_region`] : []),
        ...(c.L.plan.causal ? [`row${r} <= i0 + ${t}u`] : []), ...(c.L.keyMask ? [`kk${r} != 0.0`] : [])];
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
export function keysKernelSubgroup(c: Common): KernelSpec {
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
    ...(L.keyMask ? rows.map((r) => `let kk${r} = b_km[${maskBaseOf(L, bname)} + mtok${r}];`) : []),
    `for (var i0 = 0u; i0 < NQ; i0 += ${T}u) {`, ...step, `}`];
  const prologue = rows.flatMap((r) => [
    ...keyRowSetup(k, r, `tile * ${WG * R}u + ${r * WG}u + lid`, [['ktok', 'k'], ['vtok', 'v'], ['dkoff', 'dK'], ['dvoff', 'dV'], ...maskOps(L, 'mtok')]),
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
export const biasSlots = (L: Layout, S: number) => L.entries + S;

/** Scratch f32 offset of the per-group partial sums of the subgroup bias kernel. */
export const partialsAt = (plan: AttentionPlan) => 2 * plan.groups * plan.nq;

/**
 * Bias kernel, subgroup variant, part 1: one subgroup per group (batch entry, head, window) owns a
 * table of the group's sums per relative offset in workgroup memory. Lanes own key rows, query rows are
 * broadcast (as in the keys kernel) and each dS is added to its offset's sum. For one query the
 * subgroup's keys lie at distinct offsets, so its adds hit distinct words (padded rows: a word per
 * lane); a barrier per query orders the adds of different queries. The table goes to the scratch
 * after the (lse, D) rows; part 2 sums the groups in a fixed order.
 */
export function biasPartialKernel(c: Common): KernelSpec {
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
      ...keyRowSetup(k, r, `j0 + ${r * S}u + lane`, [['ktok', 'k'], ['vtok', 'v'], ...maskOps(L, 'mtok')]),
      ds.map((d) => `var k${r}_${d} = vec4f(0.0); var v${r}_${d} = vec4f(0.0);`).join(' '),
      keyRowLoad(k, r, `kb + ktok${r}`, `vb + vtok${r}`),
      ...(L.keyMask ? [`let kk${r} = b_km[${maskBaseOf(L, bname)} + mtok${r}];`] : [])]),
    `for (var i0 = 0u; i0 < NQ; i0 += ${T}u) {`, ...step, `}`,
    `}`,
    `for (var e = lid; e < ${E}u; e += ${S}u) { b_scratch[${partialsAt(plan)}u + qgrp * ${E}u + e] = tab[e]; }`,
    `}`].join('\n');
  return { key: `attention-backward-bias:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: bindingsOf(names), dispatch: gridFor(plan.groups), features: ['subgroups'] };
}

/** Bias kernel, subgroup variant, part 2: dRelPosBias[entry, head] = Σ over batch entries and windows, in order. */
export function biasSumKernel(c: Common): KernelSpec {
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
