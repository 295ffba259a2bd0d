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
 *             'tiles' (the workgroup-memory implicit GEMM) on GPUs
 * Bindings, in order: x, weight, [bias], [gate], [residual], out (only the present ones).
 */
import type { KernelSpec } from './kernel.ts';
import type { View } from './view.ts';
import { extent } from './elementwise.ts';
import { apply64, checkActivation, type Activation } from './epilogue.ts';
import { DEFAULT_TILES, type AdapterTraits } from './gemm.ts';
import type { TilesTiling } from './gemm-tiles.ts';
import { convDirectWgsl } from './conv-direct.ts';
import { convTilesWgsl } from './conv-tiles.ts';

export type Triple = [number, number, number];

export interface ConvParams {
  x: View;
  weight: View;
  out: View;
  stride?: number | readonly number[];
  padding?: 'same' | 'valid' | number | readonly (number | readonly [number, number])[];
  dilation?: number | readonly number[];
  groups?: number;
  bias?: View;
  activation?: Activation;
  gate?: View;
  residual?: View;
  tiling?: ConvTiling;
  adapter?: AdapterTraits;
}

/**
 * 'direct': one subgroup of `lanes` per workgroup computes `rows` output channels (each lane loads the
 * weights of rows / lanes of them and broadcasts; rows < lanes means every lane loads all) for `cols`
 * consecutive outputs along w per lane (a multiple of 4). 'tiles': as GEMM's, with M = output channels
 * of a group, N = output positions, K = Cin / groups * KT * KH * KW.
 */
export type ConvTiling = { kind: 'direct'; lanes: number; rows: number; cols: number } | ({ kind: 'tiles' } & TilesTiling);

/** The checked problem. Spatial triples are in the order of the views' axes 2, 3, 4. */
export interface ConvPlan {
  B: number; Cin: number; Cout: number; groups: number; cinG: number; coutG: number;
  size: Triple; kernel: Triple; stride: Triple; dilation: Triple; padBefore: Triple; outSize: Triple;
  x: View; weight: View; out: View; bias?: View; gate?: View; residual?: View;
  activation: Activation;
}

const AXES = ['t', 'h', 'w'];

function checkView(v: unknown, what: string, rank: number): asserts v is View {
  const o = v as View;
  if (!o || !Array.isArray(o.shape) || !Array.isArray(o.strides) || o.shape.length !== o.strides.length) {
    throw new Error(`conv: ${what} must be a view { shape, strides, offset } with one stride per axis`);
  }
  if ([...o.shape, ...o.strides, o.offset].some((x) => !Number.isInteger(x) || x < 0)) {
    throw new Error(`conv: ${what} needs non-negative integer shape, strides and offset`);
  }
  if (o.shape.length !== rank) throw new Error(`conv: ${what} must have rank ${rank}, got shape [${o.shape}]`);
  if (o.shape.some((n) => n === 0)) throw new Error(`conv: ${what} has an empty axis ([${o.shape}])`);
}

function triple(v: number | readonly number[] | undefined, what: string, dflt: number): Triple {
  const t = v === undefined ? [dflt, dflt, dflt] : typeof v === 'number' ? [v, v, v] : [...v];
  if (t.length !== 3 || t.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new Error(`conv: ${what} must be a positive integer or three of them (t, h, w), got ${JSON.stringify(v)}`);
  }
  return t as Triple;
}

/** The output shape [B, Cout, To, Ho, Wo] that x, weight and the settings imply. */
export function convOutShape(p: Omit<ConvParams, 'out'>): number[] {
  const g = geometry(p);
  return [g.B, g.Cout, ...g.outSize];
}

function geometry(p: Omit<ConvParams, 'out'>) {
  checkView(p.x, 'x', 5);
  checkView(p.weight, 'weight', 5);
  const [B, Cin, T, H, W] = p.x.shape;
  const [Cout, cinG, ...kernel] = p.weight.shape;
  const groups = p.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1 || Cin % groups || Cout % groups) {
    throw new Error(`conv: groups (${groups}) must divide the input channels (${Cin}) and the output channels (${Cout})`);
  }
  if (cinG !== Cin / groups) throw new Error(`conv: weight must have shape [Cout, Cin / groups = ${Cin / groups}, KT, KH, KW], got [${p.weight.shape}]`);
  const stride = triple(p.stride, 'stride', 1);
  const dilation = triple(p.dilation, 'dilation', 1);
  const size: Triple = [T, H, W];
  const pads: [number, number][] = [];
  const pad = p.padding ?? 'valid';
  for (let i = 0; i < 3; i++) {
    const span = dilation[i] * (kernel[i] - 1) + 1;
    if (pad === 'same') {
      const total = Math.max((Math.ceil(size[i] / stride[i]) - 1) * stride[i] + span - size[i], 0);
      pads.push([Math.floor(total / 2), total - Math.floor(total / 2)]);
    } else if (pad === 'valid') pads.push([0, 0]);
    else {
      const e = typeof pad === 'number' ? pad : Array.isArray(pad) && pad.length === 3 ? pad[i] : undefined;
      const pair = typeof e === 'number' ? [e, e] : e;
      if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => !Number.isInteger(x) || x < 0)) {
        throw new Error(`conv: padding must be 'same', 'valid', a number or three of them (each a number or [before, after]), got ${JSON.stringify(pad)}`);
      }
      pads.push([pair[0], pair[1]]);
    }
  }
  const outSize = size.map((n, i) => Math.floor((n + pads[i][0] + pads[i][1] - (dilation[i] * (kernel[i] - 1) + 1)) / stride[i]) + 1) as Triple;
  outSize.forEach((n, i) => {
    if (n < 1) throw new Error(`conv: along ${AXES[i]} the (dilated) kernel ${kernel[i]} is larger than the padded input ${size[i] + pads[i][0] + pads[i][1]}`);
  });
  return { B, Cin, Cout, groups, cinG, coutG: Cout / groups, size, kernel: kernel as Triple, stride, dilation,
    padBefore: pads.map((q) => q[0]) as Triple, outSize };
}

export function planConv(p: ConvParams): ConvPlan {
  const geo = geometry(p);
  checkView(p.out, 'out', 5);
  const { B, Cout } = geo;
  const outShape = [B, Cout, ...geo.outSize];
  if (p.out.shape.some((n, i) => n !== outShape[i])) throw new Error(`conv: out must have shape [${outShape}], got [${p.out.shape}]`);
  if (p.out.strides.some((s, i) => s === 0 && outShape[i] > 1)) throw new Error('conv: out must not broadcast (stride 0 over an axis longer than 1)');
  const plan: ConvPlan = { ...geo, x: p.x, weight: p.weight, out: p.out, activation: p.activation ?? 'none' };
  checkActivation(plan.activation, 'conv');
  const expect: Record<'bias' | 'gate' | 'residual', number[]> = { bias: [Cout], gate: [B, Cout], residual: outShape };
  for (const k of ['bias', 'gate', 'residual'] as const) {
    const v = p[k];
    if (v === undefined) continue;
    checkView(v, k, expect[k].length);
    if (v.shape.some((n, i) => n !== expect[k][i])) throw new Error(`conv: ${k} must have shape [${expect[k]}], got [${v.shape}]`);
    plan[k] = v;
  }
  if (extent(p.out) > 2 ** 31) throw new Error('conv: out is too large for 32-bit indexing');
  return plan;
}

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

/**
 * The direct kernel on SIMD software adapters (see chooseGemmTiling for why), with as many output
 * channels per workgroup as the group has, up to two subgroups' worth; workgroup-memory tiles elsewhere.
 */
export function chooseConvTiling(adapter: AdapterTraits | undefined, plan: Pick<ConvPlan, 'coutG' | 'outSize' | 'kernel'>): ConvTiling {
  const sg = adapter?.info.subgroupMinSize;
  if (adapter?.software && adapter.features.has('subgroups') && sg && sg === adapter.info.subgroupMaxSize && sg <= 16) {
    // A kernel without h/w taps does little work per loaded window: more channels per window pay off
    // (measured on lavapipe for the 3x1x1 half of a (2+1)D block).
    const wide = plan.kernel[1] * plan.kernel[2] === 1 && plan.coutG >= 4 * sg;
    const rows = wide ? 4 * sg : plan.coutG >= 2 * sg ? 2 * sg : plan.coutG >= sg ? sg : plan.coutG;
    return { kind: 'direct', lanes: sg, rows, cols: plan.outSize[2] > 4 ? 8 : 4 };
  }
  return { ...DEFAULT_TILES, kind: 'tiles' } as ConvTiling;
}

function checkTiling(t: ConvTiling): void {
  const pos = (x: number, what: string) => {
    if (!Number.isInteger(x) || x < 1) throw new Error(`conv tiling: ${what} must be a positive integer (got ${x})`);
  };
  if (t.kind === 'direct') {
    pos(t.lanes, 'lanes'); pos(t.rows, 'rows'); pos(t.cols, 'cols');
    if (t.cols % 4) throw new Error(`conv tiling: cols (${t.cols}) must be a multiple of 4`);
    if (t.rows > t.lanes && t.rows % t.lanes) throw new Error(`conv tiling: rows (${t.rows}) above lanes must be a multiple of lanes (${t.lanes})`);
  } else if (t.kind === 'tiles') {
    for (const k of ['tileM', 'tileN', 'tileK', 'threadRows', 'threadCols'] as const) pos(t[k], k);
    if (t.tileM % t.threadRows || t.tileN % t.threadCols) throw new Error('conv tiling: threadRows must divide tileM and threadCols tileN');
    if ((t.tileM / t.threadRows) * (t.tileN / t.threadCols) > 256) throw new Error('conv tiling: at most 256 invocations per workgroup');
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
  return {
    key, wgsl: body.wgsl, entryPoint: 'main', dispatch: body.dispatch, features: body.features,
    bindings: names.map((n) => ({ name: `${n}_buf`, access: n === 'out' ? 'read_write' as const : 'read' as const })),
  };
}

/** Binding order of the present operands. */
export function convBindingNames(p: ConvParams): string[] {
  return ['x', 'weight', ...(['bias', 'gate', 'residual'] as const).filter((k) => p[k] !== undefined), 'out'];
}

/** The same kernel under the name the benchmark harness looks up. */
export const conv3dKernel = convKernel;
