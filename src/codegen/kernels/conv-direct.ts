// The convolution kernel for SIMD software adapters (the cost model is in gemm-lanes.ts): one subgroup
// per workgroup computes `rows` output channels; lane l owns `cols` consecutive outputs along w of one
// (t, h) output row. For each (input channel, kt, kh) a lane loads the input window its outputs need
// once (as aligned vec4s when the layout allows) and reuses it for every kw tap and every output
// channel; each weight is loaded by one lane and broadcast. No workgroup memory, no barriers.
import { applyWgsl, activationWgsl } from './epilogue.ts';
import type { ConvPlan, DirectTiling, Triple } from './conv-plan.ts';
import { checkGrid, type GemmWgsl } from './gemm-lanes.ts';
import { declareBuffer, vec4Along } from './operand-wgsl.ts';
import { permute, type View } from './view.ts';

const u = (n: number) => `${n}u`;
const i32 = (n: number) => `${n}i`;
const COMP = ['x', 'y', 'z', 'w'];

/**
 * Convolution is symmetric in its spatial axes, so when the output's w extent is too short to fill a
 * lane's run, w is swapped with the longest spatial axis (views and per-axis settings together).
 */
export function widestLast(g: ConvPlan): ConvPlan {
  const [To, Ho, Wo] = g.outSize;
  if (Wo >= 4 || Math.max(To, Ho) <= Wo) return g;
  const axis = To >= Ho ? 0 : 1;
  const swap = <T>(t: readonly T[]): [T, T, T] => {
    const r = [...t] as [T, T, T];
    [r[axis], r[2]] = [r[2], r[axis]];
    return r;
  };
  const perm = [0, 1, 2, 3, 4];
  [perm[2 + axis], perm[4]] = [4, 2 + axis];
  const pv = (v: View | undefined) => v && permute(v, perm);
  return {
    ...g, size: swap(g.size), kernel: swap(g.kernel), stride: swap(g.stride), dilation: swap(g.dilation),
    padBefore: swap(g.padBefore), outSize: swap(g.outSize),
    x: pv(g.x)!, weight: pv(g.weight)!, out: pv(g.out)!, residual: pv(g.residual),
  };
}

export function convDirectWgsl(plan: ConvPlan, t: DirectTiling): GemmWgsl {
  const g = widestLast(plan);
  const L = t.lanes, R = t.rows, C = t.cols, CV = C / 4;
  const [T, H, W] = g.size;
  const [KT, KH, KW] = g.kernel;
  const [st, sh, sw] = g.stride;
  const [dt, dh, dw] = g.dilation;
  const [pt, ph, pw] = g.padBefore as Triple;
  const [To, Ho, Wo] = g.outSize;
  const WB = Math.ceil(Wo / C), P = To * Ho * WB, Q = g.cinG * KT * KH, CT = Math.ceil(g.coutG / R);
  const spread = R >= L; // weights: each lane loads rows / lanes channels and broadcasts
  const J = spread ? R / L : R;
  const KV = Math.ceil(KW / 4);

  const xs = g.x.strides, wst = g.weight.strides, os = g.out.strides;
  const xVec = vec4Along(g.x.offset, [], xs, g.x.shape, 4);
  const oVec = vec4Along(g.out.offset, [], os, g.out.shape, 4);
  const rVec = !!g.residual && vec4Along(g.residual.offset, [], g.residual.strides, g.residual.shape, 4);
  const ops: { name: string; vec4: boolean; write?: boolean }[] = [
    { name: 'x', vec4: xVec }, { name: 'weight', vec4: false },
    ...(['bias', 'gate', 'residual'] as const).filter((k) => g[k]).map((k) => ({ name: k, vec4: k === 'residual' && rVec })),
    { name: 'out', vec4: oVec, write: true },
  ];
  const decls = ops.map((o, i) => declareBuffer(i, { wgslName: `${o.name}_buf`, vec4: o.vec4 }, o.write));

  const body: string[] = [
    `let p = wg.x * ${u(L)} + lane;`, `let pc = min(p, ${u(P - 1)});`,
    `let wb = pc % ${u(WB)};`, `let ho = (pc / ${u(WB)}) % ${u(Ho)};`, `let to = pc / ${u(WB * Ho)};`,
    `let gi = wg.y / ${u(CT)};`, `let co0 = gi * ${u(g.coutG)} + (wg.y % ${u(CT)}) * ${u(R)};`,
    `let coEnd = gi * ${u(g.coutG)} + ${u(g.coutG)};`, 'let b = wg.z;',
    `let xBase = ${u(g.x.offset)} + b * ${u(xs[0])} + gi * ${u(g.cinG * xs[1])};`,
    `let ws = i32(wb * ${u(C * sw)}) - ${i32(pw)};`,
  ];
  for (let j = 0; j < J; j++) {
    const co = spread ? `co0 + ${u(j * L)} + lane` : `co0 + ${u(j)}`;
    body.push(`let wrow${j} = ${u(g.weight.offset)} + min(${co}, coEnd - 1u) * ${u(wst[0])};`);
  }
  for (let r = 0; r < R; r++) for (let v = 0; v < CV; v++) body.push(`var acc${r}_${v} = vec4f(0.0);`);

  // The input window: element e is input w position ws + e.
  const Wn = (C - 1) * sw + (KW - 1) * dw + 1;
  const phase = ((-pw % 4) + 4) % 4;
  const el = (e: number) => (xVec ? `xv${(phase + e) >> 2}.${COMP[(phase + e) & 3]}` : `xe${e}`);
  const loop = [
    `let kh = q % ${u(KH)};`, `let kt = (q / ${u(KH)}) % ${u(KT)};`, `let ci = q / ${u(KH * KT)};`,
    `let ti = i32(to * ${u(st)} + kt * ${u(dt)}) - ${i32(pt)};`,
    `let hi = i32(ho * ${u(sh)} + kh * ${u(dh)}) - ${i32(ph)};`,
    `let rowOk = ti >= 0i && ti < ${i32(T)} && hi >= 0i && hi < ${i32(H)};`,
    `let row = xBase + ci * ${u(xs[1])} + u32(clamp(ti, 0i, ${i32(T - 1)})) * ${u(xs[2])} + u32(clamp(hi, 0i, ${i32(H - 1)})) * ${u(xs[3])};`,
  ];
  if (xVec) {
    loop.push(`let a0 = ws - ${i32(phase)};`);
    for (let j = 0; j < Math.ceil((phase + Wn) / 4); j++) {
      loop.push(`let xv${j} = select(vec4f(0.0), x_buf[row / 4u + u32(clamp(a0 / 4i + ${i32(j)}, 0i, ${i32(W / 4 - 1)}))], ` +
        `vec4<bool>(rowOk) & (vec4i(a0 + ${i32(4 * j)}) + vec4i(0i, 1i, 2i, 3i) >= vec4i(0i)) & (vec4i(a0 + ${i32(4 * j)}) + vec4i(0i, 1i, 2i, 3i) < vec4i(${i32(W)})));`);
    }
  } else {
    for (let e = 0; e < Wn; e++) {
      loop.push(`let xe${e} = select(0.0, x_buf[row + u32(clamp(ws + ${i32(e)}, 0i, ${i32(W - 1)})) * ${u(xs[4])}], ` +
        `rowOk && ws + ${i32(e)} >= 0i && ws + ${i32(e)} < ${i32(W)});`);
    }
  }
  loop.push(`let wq = ci * ${u(wst[1])} + kt * ${u(wst[2])} + kh * ${u(wst[3])};`);
  for (let j = 0; j < J; j++) for (let h = 0; h < KV; h++) {
    const taps = [0, 1, 2, 3].map((c) => (4 * h + c < KW ? `weight_buf[wrow${j} + wq + ${u((4 * h + c) * wst[4])}]` : '0.0'));
    loop.push(`let wv${j}_${h} = vec4f(${taps.join(', ')});`);
  }
  for (let r = 0; r < R; r++) {
    loop.push('{');
    for (let h = 0; h < KV; h++) {
      const src = spread ? `subgroupBroadcast(wv${Math.floor(r / L)}_${h}, ${u(r % L)})` : `wv${r}_${h}`;
      loop.push(`  let w${h} = ${src};`);
    }
    for (let v = 0; v < CV; v++) {
      let e = `acc${r}_${v}`;
      for (let kw = 0; kw < KW; kw++) {
        const xs4 = [0, 1, 2, 3].map((i) => el((4 * v + i) * sw + kw * dw)).join(', ');
        e = `fma(vec4f(w${kw >> 2}.${COMP[kw & 3]}), vec4f(${xs4}), ${e})`;
      }
      loop.push(`  acc${r}_${v} = ${e};`);
    }
    loop.push('}');
  }
  body.push(`for (var q = 0u; q < ${u(Q)}; q++) {`, ...loop.map((l) => `  ${l}`), '}');

  // Epilogue: per output channel (uniform across the subgroup), one run of `cols` outputs per lane.
  const rs = g.residual?.strides;
  const outRow = (s: readonly number[], off: number) => `${u(off)} + b * ${u(s[0])} + to * ${u(s[2])} + ho * ${u(s[3])}`;
  body.push(`let orow = ${outRow(os, g.out.offset)};`);
  if (g.residual) body.push(`let rrow = ${outRow(rs!, g.residual.offset)};`);
  // One loop over the channels (see gemm-lanes.ts: the stores are emitted once, not once per row).
  body.push(`var accs: array<vec4f, ${R * CV}>;`);
  for (let r = 0; r < R; r++) for (let v = 0; v < CV; v++) body.push(`accs[${r * CV + v}] = acc${r}_${v};`);
  body.push(`for (var r = 0u; r < min(${u(R)}, coEnd - co0); r++) {`, '  let co = co0 + r;');
  if (g.bias) body.push(`  let bias = bias_buf[${u(g.bias.offset)} + co * ${u(g.bias.strides[0])}];`);
  if (g.gate) body.push(`  let gate = gate_buf[${u(g.gate.offset)} + b * ${u(g.gate.strides[0])} + co * ${u(g.gate.strides[1])}];`);
  for (let v = 0; v < CV; v++) {
    const wo = `wb * ${u(C)} + ${u(4 * v)}`;
    let res: string | undefined;
    if (g.residual) {
      res = rVec ? `residual_buf[(rrow + co * ${u(rs![1])}) / 4u + min(${wo}, ${u(Wo - 4)}) / 4u]`
        : `vec4f(${[0, 1, 2, 3].map((i) => `residual_buf[rrow + co * ${u(rs![1])} + min(${wo} + ${u(i)}, ${u(Wo - 1)}) * ${u(rs![4])}]`).join(', ')})`;
    }
    const val = applyWgsl(g.activation, `accs[r * ${u(CV)} + ${u(v)}]`, { bias: g.bias && 'bias', gate: g.gate && 'gate', residual: res }, true);
    body.push(`  { let wo = ${wo};`, `    let val = ${val};`);
    if (oVec) body.push(`    if (p < ${u(P)} && wo < ${u(Wo)}) { out_buf[(orow + co * ${u(os[1])}) / 4u + wo / 4u] = val; }`);
    else {
      for (let i = 0; i < 4; i++) body.push(`    if (p < ${u(P)} && wo + ${u(i)} < ${u(Wo)}) { out_buf[orow + co * ${u(os[1])} + (wo + ${u(i)}) * ${u(os[4])}] = val[${i}]; }`);
    }
    body.push('  }');
  }
  body.push('}');

  const wgsl = [...(spread ? ['enable subgroups;'] : []), ...decls, activationWgsl(g.activation, true),
    `@compute @workgroup_size(${L})`,
    `fn main(@builtin(workgroup_id) wg: vec3u, @builtin(${spread ? 'subgroup_invocation_id' : 'local_invocation_index'}) lane: u32) {`,
    ...body.map((l) => `  ${l}`), '}', ''].join('\n');
  return { wgsl, dispatch: checkGrid([Math.ceil(P / L), g.groups * CT, g.B], 'conv'), features: spread ? ['subgroups'] : undefined };
}
