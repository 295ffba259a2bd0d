/**
 * Convolution over any subset of (t, h, w) with a fused epilogue; implicit GEMM (no im2col buffer).
 *
 * describe — ConvParams (every operand is a strided View):
 *   x         [B, Cin, T, H, W]   (an axis that is not convolved has kernel size 1; a 1D or 2D input is a
 *             view with size-1 axes)
 *   weight    [Cout, Cin / groups, KT, KH, KW]
 *   out       [B, Cout, To, Ho, Wo]  with To = floor((T + padBefore + padAfter - dil * (KT - 1) - 1) / stride) + 1
 *   stride    number or [st, sh, sw] (default 1); dilation likewise (default 1)
 *   padding   'valid' (default) | 'same' (TensorFlow's: out = ceil(in / stride), the odd pad after) |
 *             number | [pt, ph, pw] with each entry a number or [before, after]; padding reads zeros
 *   groups    divides Cin and Cout (default 1); groups = Cin = Cout is depthwise
 *   bias [Cout]; activation (as GEMM); gate [B, Cout]; residual [B, Cout, To, Ho, Wo]
 *   epilogue order: act(acc + bias) * gate + residual
 *   tiling    optional; else chooseConvTiling(adapter, ...): 'direct' on SIMD software adapters (lanes share
 *             output channels, each lane a run of outputs along w reusing one input window for every kw),
 *             'tiles' (the workgroup-memory implicit GEMM) on GPUs; where the adapter tunes, the tiles of
 *             convTilingCandidates are the kernel's variants
 * Bindings, in order: x, weight, [bias], [gate], [residual], out (only the present ones).
 */
import type { KernelSpec } from './kernel.ts';
import { extent, type View } from './view.ts';
import { apply64 } from './epilogue.ts';
import { chooseConvTiling, convTilingCandidates, planConv, type ConvParams, type ConvTiling } from './conv-plan.ts';
import { convDirectWgsl } from './conv-direct.ts';
import { convTilesWgsl } from './conv-tiles.ts';
import { checkTilesTiling } from './gemm-plan.ts';

// ---------------------------------------------------------------- float64 reference

export type ConvData = { x: ArrayLike<number>; weight: ArrayLike<number>; bias?: ArrayLike<number>; gate?: ArrayLike<number>; residual?: ArrayLike<number> };

const at = (v: View, idx: number[]) => idx.reduce((o, x, i) => o + x * v.strides[i], v.offset);

/** float64 convolution; returns the out buffer (extent(out) elements, NaN where the view writes nothing). */
export function convReference(p: ConvParams, d: ConvData): Float64Array {
  const g = planConv(p);
  const out = new Float64Array(extent(p.out)).fill(NaN);
  const [To, Ho, Wo] = g.outSize;
  const [KT, KH, KW] = g.kernel;
  for (let b = 0; b < g.B; b++) for (let co = 0; co < g.Cout; co++) {
    const gi = Math.floor(co / g.coutG);
    for (let to = 0; to < To; to++) for (let ho = 0; ho < Ho; ho++) for (let wo = 0; wo < Wo; wo++) {
      let acc = 0;
      for (let ci = 0; ci < g.cinG; ci++) for (let kt = 0; kt < KT; kt++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
        const pos = [to, ho, wo].map((o, i) => o * g.stride[i] + [kt, kh, kw][i] * g.dilation[i] - g.padBefore[i]);
        if (pos.some((q, i) => q < 0 || q >= g.size[i])) continue;
        acc += d.weight[at(g.weight, [co, ci, kt, kh, kw])] * d.x[at(g.x, [b, gi * g.cinG + ci, ...pos])];
      }
      const o = [b, co, to, ho, wo];
      out[at(g.out, o)] = apply64(g.activation, acc, g.bias && d.bias![at(g.bias, [co])], g.gate && d.gate![at(g.gate, [b, co])],
        g.residual && d.residual![at(g.residual, o)]);
    }
  }
  return out;
}

// ---------------------------------------------------------------- entry point

function checkTiling(t: ConvTiling): void {
  const pos = (x: number, what: string) => {
    if (!Number.isInteger(x) || x < 1) throw new Error(`conv tiling: ${what} must be a positive integer (got ${x})`);
  };
  if (t.kind === 'direct') {
    pos(t.lanes, 'lanes'); pos(t.rows, 'rows'); pos(t.cols, 'cols');
    if (t.cols % 4) throw new Error(`conv tiling: cols (${t.cols}) must be a multiple of 4`);
    if (t.rows > t.lanes && t.rows % t.lanes) throw new Error(`conv tiling: rows (${t.rows}) above lanes must be a multiple of lanes (${t.lanes})`);
  } else if (t.kind === 'tiles') {
    checkTilesTiling(t, 'conv');
  } else {
    throw new Error(`conv tiling: unknown kind '${(t as { kind: unknown }).kind}' (direct or tiles)`);
  }
}

/** The convolution kernel for `p`; see the describe block at the top of this file. */
export function convKernel(p: ConvParams): KernelSpec {
  const plan = planConv(p);
  const tiling = p.tiling ?? chooseConvTiling(p.adapter, plan);
  checkTiling(tiling);
  const body = tiling.kind === 'direct' ? convDirectWgsl(plan, tiling) : convTilesWgsl(plan, tiling);
  const names = convBindingNames(p);
  const views = names.map((n) => plan[n as 'x']!);
  const key = ['conv', JSON.stringify(tiling), plan.activation, plan.groups, plan.stride, plan.dilation, plan.padBefore,
    ...names.map((n, i) => `${n}:${views[i].shape}/${views[i].strides}/${views[i].offset}`)].join('|');
  const spec: KernelSpec = {
    key, wgsl: body.wgsl, entryPoint: 'main', dispatch: body.dispatch, features: body.features,
    bindings: names.map((n) => ({ name: `${n}_buf`, access: n === 'out' ? 'read_write' as const : 'read' as const })),
  };
  if (p.adapter?.tune && !p.tiling) {
    const { adapter, ...fixed } = p;
    spec.variants = () => convTilingCandidates(adapter, plan).slice(1).map((t) => convKernel({ ...fixed, tiling: t }));
  }
  return spec;
}

/** Binding order of the present operands. */
export function convBindingNames(p: ConvParams): string[] {
  return ['x', 'weight', ...(['bias', 'gate', 'residual'] as const).filter((k) => p[k] !== undefined), 'out'];
}
