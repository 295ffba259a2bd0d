// The checked convolution problem that the generators (conv-direct.ts, conv-tiles.ts), the float64
// reference and the entry point (conv.ts) share: parameters, geometry (padding, output size),
// tilings, and planConv. The parameters are described in conv.ts.
import type { AdapterTraits } from './kernel.ts';
import { checkActivation, type Activation } from './epilogue.ts';
import { DEFAULT_TILES, vectorTileCandidates, type TilesTiling } from './gemm-plan.ts';
import { extent, type View } from './view.ts';

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
export type ConvTiling = ({ kind: 'direct' } & DirectTiling) | ({ kind: 'tiles' } & TilesTiling);
export interface DirectTiling { lanes: number; rows: number; cols: number }

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

/**
 * The tilings the runtime's tuner times for one convolution (the default first): on an adapter that
 * gets workgroup-memory tiles, the vector tiles the GEMM is offered, for M = output channels of a group
 * and N = output positions. The direct kernel of SIMD software adapters has no variants.
 */
export function convTilingCandidates(adapter: AdapterTraits | undefined, plan: Pick<ConvPlan, 'coutG' | 'outSize' | 'kernel'>): ConvTiling[] {
  const first = chooseConvTiling(adapter, plan);
  if (first.kind === 'direct') return [first];
  const N = plan.outSize[0] * plan.outSize[1] * plan.outSize[2];
  return [first, ...vectorTileCandidates(adapter, { M: plan.coutG, N }).map((t) => ({ kind: 'tiles' as const, ...t }))];
}
