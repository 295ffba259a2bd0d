// The convolution kernel for GPUs: implicit GEMM on the workgroup-tile skeleton of gemm-tiles.ts.
// Per (batch, group): M = output channels of the group, N = output positions (to, ho, wo),
// K = (input channel of the group, kt, kh, kw); the input patch element of (k, n) is computed on the fly
// (zero in the padding), so no im2col buffer exists. Any of the skeletons (scalar, vector, prefetching).
import { applyWgsl, activationWgsl } from './epilogue.ts';
import type { ConvPlan } from './conv-plan.ts';
import type { GemmWgsl } from './gemm-lanes.ts';
import type { TilesTiling } from './gemm-plan.ts';
import { tileSkeleton } from './gemm-prefetch.ts';
import { declareBuffer } from './operand-wgsl.ts';
import type { View } from './view.ts';

const u = (n: number) => `${n}u`;

export function convTilesWgsl(g: ConvPlan, t: TilesTiling): GemmWgsl {
  const [T, H, W] = g.size;
  const [KT, KH, KW] = g.kernel;
  const [To, Ho, Wo] = g.outSize;
  const names = ['x', 'weight', ...(['bias', 'gate', 'residual'] as const).filter((k) => g[k]), 'out'];
  const decls = names.map((n, i) => declareBuffer(i, { wgslName: `${n}_buf`, vec4: false }, n === 'out'));
  const lin = (v: View, idx: string[]) => [u(v.offset), ...idx.map((e, i) => (v.strides[i] ? `(${e}) * ${u(v.strides[i])}` : ''))].filter(Boolean).join(' + ');
  // k -> (ci, kt, kh, kw) and n -> (to, ho, wo), as WGSL expressions
  const kParts = (k: string) => [`${k} / ${u(KT * KH * KW)}`, `(${k} / ${u(KH * KW)}) % ${u(KT)}`, `(${k} / ${u(KW)}) % ${u(KH)}`, `${k} % ${u(KW)}`];
  const nParts = (n: string) => [`${n} / ${u(Ho * Wo)}`, `(${n} / ${u(Wo)}) % ${u(Ho)}`, `${n} % ${u(Wo)}`];
  const co = (m: string) => `gi * ${u(g.coutG)} + ${m}`;

  const fns = [
    `fn ld_x(b: u32, c: u32, k: u32, n: u32) -> f32 {`,
    `  let kk = vec3u(${kParts('k').slice(1).join(', ')});`,
    `  let oo = vec3u(${nParts('n').join(', ')});`,
    `  let pos = vec3i(oo * vec3u(${g.stride.map(u).join(', ')}) + kk * vec3u(${g.dilation.map(u).join(', ')})) - vec3i(${g.padBefore.map((x) => `${x}i`).join(', ')});`,
    `  let ok = all(pos >= vec3i(0i)) && all(pos < vec3i(${T}i, ${H}i, ${W}i));`,
    `  let q = vec3u(clamp(pos, vec3i(0i), vec3i(${T - 1}i, ${H - 1}i, ${W - 1}i)));`,
    `  return select(0.0, x_buf[${lin(g.x, ['b', `c + ${kParts('k')[0]}`, 'q.x', 'q.y', 'q.z'])}], ok);`,
    '}',
  ];
  return tileSkeleton(t)({
    M: g.coutG, N: To * Ho * Wo, K: g.cinG * KT * KH * KW, batches: g.B * g.groups,
    decls: [...decls, activationWgsl(g.activation), ...fns],
    prelude: [`let b = wg.z / ${u(g.groups)};`, `let gi = wg.z % ${u(g.groups)};`],
    loadA: (m, k) => `weight_buf[${lin(g.weight, [co(m), ...kParts(k)])}]`,
    loadB: (k, n) => `ld_x(b, gi * ${u(g.cinG)}, ${k}, ${n})`,
    store: (m, n, acc) => {
      const o = ['b', co(m), ...nParts(n)];
      return `${`out_buf[${lin(g.out, o)}]`} = ${applyWgsl(g.activation, acc, {
        bias: g.bias && `bias_buf[${lin(g.bias, [co(m)])}]`,
        gate: g.gate && `gate_buf[${lin(g.gate, ['b', co(m)])}]`,
        residual: g.residual && `residual_buf[${lin(g.residual, o)}]`,
      })};`;
    },
  }, t);
}
