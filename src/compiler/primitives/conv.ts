// conv(x, over, kernel, out, stride, padding, dilation, groups, bias): convolution over named axes.
import { fail } from '../ir/diagnostics.ts';
import { asPerAxis, asString } from '../ir/convert.ts';
import { numelOf, relayout, sizeIn, stridesOf, type NamedTensor } from '../ir/named-tensor.ts';
import type { AxisPair } from '../ir/graph.ts';
import { numel } from '../ir/values.ts';
import { product, resolvePerAxis, sizeOf, withSize, withSizes } from './axes.ts';
import type { Json } from '../ir/json.ts';
import type { BoundArgs, ParamShape, Primitive, ReferenceCall, VjpCall, VjpResult } from './types.ts';
import { convKernel } from '../../codegen/kernels/conv.ts';
import {
  convBackwardDataKernel, convFlipWeightKernel, convTransposedPhases,
} from '../../codegen/kernels/conv-backward.ts';
import { convWeightGradientKernel } from '../../codegen/kernels/conv-backward-lanes.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { viewOver, type LowerCall, type LowerVjpCall, type Value } from './lowering.ts';
import { coalesce, contiguous, type View } from '../../codegen/kernels/view.ts';

/** Padding per conv axis: "same" (d(k-1)/2, needs it whole), "valid" (0), an integer or a named tuple. */
function paddingOf(a: BoundArgs, over: string[], kernel: Map<string, number>, dilation: Map<string, number>): Map<string, number> {
  const v = a.value('padding');
  const span = a.span('padding');
  if (v.kind === 'string') {
    const mode = asString(v, span, a.what('padding'), ['same', 'valid']);
    const pad = new Map<string, number>();
    for (const ax of over) {
      const reach = dilation.get(ax)! * (kernel.get(ax)! - 1);
      if (mode === 'same' && reach % 2 !== 0) {
        fail('VDM034', span, `padding "same" needs an odd kernel, but kernel ${ax}=${kernel.get(ax)}`,
          'use an odd kernel, padding: "valid", or an explicit padding');
      }
      pad.set(ax, mode === 'same' ? reach / 2 : 0);
    }
    return pad;
  }
  const pad = resolvePerAxis(asPerAxis(v, span, a.what('padding')), over, span, a.what('padding'), 0);
  for (const [ax, p] of pad) if (p < 0) fail('VDM034', span, `padding ${ax}=${p} is negative`);
  return pad;
}

export function positive(map: Map<string, number>, a: BoundArgs, arg: string): Map<string, number> {
  for (const [ax, v] of map) if (v < 1) fail('VDM034', a.span(arg), `${arg} ${ax}=${v} must be at least 1`);
  return map;
}

export const conv: Primitive = {
  name: 'conv',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axes' },
    { name: 'kernel', kind: 'per-axis' },
    { name: 'out', kind: 'size', default: { computed: 'size(x, c)' } },
    { name: 'stride', kind: 'per-axis', default: 1 },
    { name: 'padding', kind: 'padding', default: 'same' },
    { name: 'dilation', kind: 'per-axis', default: 1 },
    { name: 'groups', kind: 'size', default: 1 },
    { name: 'bias', kind: 'bool', default: true },
  ],
  apply(a) {
    const { x, axes: over } = a.tensorAxes('x', 'over');
    if (over.includes('c') || over.includes('b')) {
      fail('VDM017', a.span('over'), `'over' of conv cannot include the ${over.includes('c') ? 'channel axis c' : 'batch axis b'}`);
    }
    const c = sizeOf(x, 'c', a.span('x'));
    const out = a.has('out') ? a.size('out') : c;
    const kernel = positive(resolvePerAxis(a.perAxis('kernel'), over, a.span('kernel'), a.what('kernel')), a, 'kernel');
    const stride = positive(resolvePerAxis(a.perAxis('stride'), over, a.span('stride'), a.what('stride'), 1), a, 'stride');
    const dilation = positive(resolvePerAxis(a.perAxis('dilation'), over, a.span('dilation'), a.what('dilation'), 1), a, 'dilation');
    const groups = a.size('groups');
    const bias = a.bool('bias');
    if (c % groups !== 0 || out % groups !== 0) {
      fail('VDM030', a.span('groups'), `groups=${groups} must divide both c=${c} and out=${out}`);
    }
    const padding = paddingOf(a, over, kernel, dilation);
    const sizes = new Map<string, number>([['c', out]]);
    for (const ax of over) {
      const n = sizeOf(x, ax, a.span('over'));
      const k = kernel.get(ax)!;
      const d = dilation.get(ax)!;
      const size = Math.floor((n + 2 * padding.get(ax)! - d * (k - 1) - 1) / stride.get(ax)!) + 1;
      if (size < 1) fail('VDM034', a.span('kernel'), `kernel ${ax}=${k} does not fit in ${ax}=${n} (output size would be ${size})`);
      sizes.set(ax, size);
    }
    const axes = withSizes(x.axes, sizes);
    const kernelShape = over.map((ax) => kernel.get(ax)!);
    const params: ParamShape[] = [{ leaf: 'weight', shape: [out, c / groups, ...kernelShape], init: 'default' }];
    if (bias) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return {
      inputs: [x],
      attrs: {
        over, kernel: Object.fromEntries(kernel), out, stride: Object.fromEntries(stride),
        padding: Object.fromEntries(padding), dilation: Object.fromEntries(dilation), groups, bias,
      },
      outputs: [{ axes: withSize(axes, 'c', out), dtype: 'f32' }],
      params,
      macs: numel(axes) * (c / groups) * product(kernelShape),
    };
  },
  // PyTorch's conv fans: fan_in = c/groups * prod(k), fan_out = out * prod(k).
  fans: (leaf, shape) => (leaf === 'weight'
    ? [product(shape.slice(1)), shape[0] * product(shape.slice(2))]
    : [shape[0] ?? 1, shape[shape.length - 1] ?? 1]),
  lower: lowerConv,
  lowerVjp: lowerConvVjp,
  reference: convReferenceOf,
  vjp: convVjpOf,
};

/**
 * How the kernels see a conv node: their three spatial slots (t, h, w) take the `over` axes and,
 * where fewer than three are convolved, the innermost batch axes (kernel 1, stride 1, no padding),
 * all in the order of x's axes; missing slots have size 1. The other batch axes, coalesced where x
 * and out walk them alike, become the kernels' B; any that still remain are looped over, one slice
 * (views with offsets) per index. `weightOf(rows, cols)` views a contiguous [rows, cols, kernel in
 * `over` order] buffer with its kernel axes moved to their slots (stride 0 for empty slots); padding
 * is the node's explicit symmetric padding.
 */
export function convLayout(attrs: LowerCall['attrs'], x: Value, out: Value) {
  const over = attrs.over as string[];
  if (over.length > 3) throw new Error(`conv: cannot lower a convolution over ${over.length} axes (at most 3)`);
  const per = (key: string, ax: string) => Number((attrs[key] as Record<string, Json>)[ax]);
  const names = x.axes.map(([n]) => n);
  const batch = names.filter((n) => n !== 'c' && !over.includes(n));
  const inSlots = batch.slice(Math.max(0, batch.length - (3 - over.length)));
  const slots: (string | null)[] = names.filter((n) => over.includes(n) || inSlots.includes(n));
  while (slots.length < 3) slots.unshift(null);
  const rest = batch.filter((n) => !inSlots.includes(n));

  const xs = stridesOf(x.axes), os = stridesOf(out.axes);
  const xAt = (n: string) => x.axes.findIndex(([m]) => m === n);
  const oAt = (n: string) => out.axes.findIndex(([m]) => m === n);
  const slotView = (v: typeof x, st: number[], at: (n: string) => number) => ({
    shape: slots.map((n) => (n === null ? 1 : v.axes[at(n)][1])),
    strides: slots.map((n) => (n === null ? 0 : st[at(n)])),
  });
  const xSlot = slotView(x, xs, xAt), oSlot = slotView(out, os, oAt);

  const C = x.axes[xAt('c')][1];
  const Cout = Number(attrs.out);
  const groups = Number(attrs.groups);
  const kernel = over.map((ax) => per('kernel', ax));
  const weightOf = (rows: number, cols: number): View => {
    const ws = stridesOf([['out', rows], ['c', cols], ...over.map((ax, i): AxisPair => [ax, kernel[i]])]);
    return {
      shape: [rows, cols, ...slots.map((n) => (n !== null && over.includes(n) ? kernel[over.indexOf(n)] : 1))],
      strides: [ws[0], ws[1], ...slots.map((n) => (n !== null && over.includes(n) ? ws[2 + over.indexOf(n)] : 0))],
      offset: 0,
    };
  };
  const conv = (n: string | null, key: string, dflt: number) => (n !== null && over.includes(n) ? per(key, n) : dflt);
  const stride = slots.map((n) => conv(n, 'stride', 1));
  const dilation = slots.map((n) => conv(n, 'dilation', 1));
  const padding = slots.map((n) => conv(n, 'padding', 0));

  // The remaining batch axes: the innermost coalesced one is B, the others are looped over.
  const merged = coalesce(rest.map((n) => x.axes[xAt(n)][1]), [rest.map((n) => xs[xAt(n)]), rest.map((n) => os[oAt(n)])]);
  const r = merged.shape.length;
  const B = r ? merged.shape[r - 1] : 1;
  const [xB, oB] = r ? [merged.strides[0][r - 1], merged.strides[1][r - 1]] : [0, 0];
  const loops = merged.shape.slice(0, Math.max(0, r - 1));
  const slices: { x: View; out: View }[] = [];
  const count = loops.reduce((n, s) => n * s, 1);
  for (let flat = 0; flat < count; flat++) {
    let rem = flat, xOff = 0, oOff = 0;
    for (let a = loops.length - 1; a >= 0; a--) {
      const i = rem % loops[a];
      rem = Math.floor(rem / loops[a]);
      xOff += i * merged.strides[0][a];
      oOff += i * merged.strides[1][a];
    }
    slices.push({
      x: { shape: [B, C, ...xSlot.shape], strides: [xB, xs[xAt('c')], ...xSlot.strides], offset: xOff },
      out: { shape: [B, Cout, ...oSlot.shape], strides: [oB, os[oAt('c')], ...oSlot.strides], offset: oOff },
    });
  }
  return { C, Cout, groups, kN: kernel.reduce((p, k) => p * k, 1), weightOf, stride, dilation, padding, slices };
}

/** One convKernel dispatch per batch slice (normally one in all); bias is the epilogue's. */
function lowerConv(call: LowerCall): void {
  const L = convLayout(call.attrs, call.inputs[0], call.out);
  const weight = L.weightOf(L.Cout, L.C / L.groups);
  const bias = call.params.get('bias');
  const buffers = [call.inputs[0].buffer, call.params.get('weight')!, ...(bias ? [bias] : []), call.out.buffer];
  for (const s of L.slices) {
    const spec = convKernel({
      x: s.x, weight, out: s.out,
      stride: L.stride, dilation: L.dilation, padding: L.padding, groups: L.groups,
      bias: bias ? contiguous([L.Cout]) : undefined,
      adapter: call.adapter,
    });
    call.emit(spec, buffers);
  }
}

/**
 * Gradient kernels on the forward's slices (dx and dy are laid out as x and y): dx by the forward
 * kernel over the flipped weight (one weight-sized copy), once per phase of a stride
 * (convTransposedPhases), else by the gather kernel;
 * dweight by convWeightGradientKernel (lanes on a SIMD software adapter, else the per-element
 * reduction), one partial per slice summed where there are several;
 * dbias as the sum of dy over all but c.
 */
function lowerConvVjp(call: LowerVjpCall): void {
  const [x] = call.inputs;
  const [dx] = call.inputGrads;
  const same = (a: Value, b: Value) => a.axes.length === b.axes.length && a.axes.every(([n], i) => n === b.axes[i][0]);
  if (!same(call.grad, call.out) || (dx && !same(dx, x))) throw new Error('conv backward: gradients must be laid out as the values they belong to');
  const L = convLayout(call.attrs, x, call.out);
  const weight = L.weightOf(L.Cout, L.C / L.groups);
  const settings = { weight, stride: L.stride, dilation: L.dilation, padding: L.padding, groups: L.groups };
  const w = call.params.get('weight')!;
  if (dx) {
    const flipped = L.weightOf(L.C, L.Cout / L.groups);
    const transposed = L.slices.map((s) => convTransposedPhases({ ...settings, x: s.x, out: s.out }, flipped));
    if (transposed.every((t) => t !== null)) {
      const buffer = call.scratch('flipped', L.C * (L.Cout / L.groups) * L.kN);
      call.emit(convFlipWeightKernel({ weight, flipped, groups: L.groups }), [w, buffer]);
      for (const t of transposed.flat()) call.emit(convKernel({ ...t!, adapter: call.adapter }), [call.grad.buffer, buffer, dx.buffer]);
    } else {
      for (const s of L.slices) call.emit(convBackwardDataKernel({ ...settings, x: s.x, out: s.out }), [call.grad.buffer, w, dx.buffer]);
    }
  }
  const dw = call.paramGrads.get('weight')!;
  const n = L.Cout * (L.C / L.groups) * L.kN;
  const k = L.slices.length;
  const partials = k > 1 ? call.scratch('dweight', k * n) : dw;
  L.slices.forEach((s, i) => {
    call.emit(convWeightGradientKernel({ ...settings, weight: { ...weight, offset: i * n }, x: s.x, out: s.out, adapter: call.adapter }), [x.buffer, call.grad.buffer, partials]);
  });
  if (k > 1) call.emit(reduceKernel({ op: 'sum', x: contiguous([k, n]), axes: [0], y: contiguous([n]) }), [partials, dw]);
  const db = call.paramGrads.get('bias');
  if (db) {
    const g = call.grad;
    const c = g.axes.findIndex(([m]) => m === 'c');
    call.emit(reduceKernel({ op: 'sum', x: viewOver(g, g.axes), axes: g.axes.flatMap((_, i) => (i === c ? [] : [i])), y: contiguous([L.Cout]) }), [g.buffer, db]);
  }
}

/**
 * Cross-correlation as src/codegen/conv.ts's convReference (no kernel flip), with the graph's
 * symmetric per-axis padding (zeros), stride and dilation: y[.., co, o] = bias[co] +
 * sum_{ci, k} weight[co, ci, k] x[.., g * c/groups + ci, o * stride + k * dilation - pad],
 * where g = co / (out/groups). Weight is [out, c/groups, kernel sizes in the order of `over`].
 */
function convReferenceOf({ inputs: [x], params, attrs, axes }: ReferenceCall): NamedTensor {
  const { Cout, C, cinG, coutG, inAxes, outAxes, B, inN, outN, kN, tap } = geometryOf(x, attrs, axes);
  const xin = relayout(x, inAxes).data;
  const w = params.get('weight')!;
  const bias = params.get('bias');
  const y = new Float64Array(B * Cout * outN);
  for (let b = 0; b < B; b++) for (let co = 0; co < Cout; co++) {
    const g = Math.floor(co / coutG);
    const yBase = (b * Cout + co) * outN;
    for (let o = 0; o < outN; o++) {
      let acc = 0;
      for (let ci = 0; ci < cinG; ci++) {
        const xBase = (b * C + g * cinG + ci) * inN, wBase = (co * cinG + ci) * kN;
        for (let k = 0; k < kN; k++) {
          const i = tap[o * kN + k];
          if (i >= 0) acc += w[wBase + k] * xin[xBase + i];
        }
      }
      y[yBase + o] = bias ? acc + bias[co] : acc;
    }
  }
  return { axes: outAxes, data: y };
}

/**
 * The backward rule of convReferenceOf. With i = tap(o, k) (the input position output o reads with
 * tap k, skipped in the padding), g = co / (out/groups) and c = g * c/groups + ci:
 *   dx[.., c, i]     += weight[co, ci, k] * dy[.., co, o]   (the transposed convolution of dy)
 *   dweight[co, ci, k] += x[.., c, i] * dy[.., co, o]       (x correlated with dy)
 *   dbias[co]         = sum over batch and o of dy[.., co, o]
 */
function convVjpOf({ inputs: [x], params, attrs, axes, grad }: VjpCall): VjpResult {
  const { Cout, C, cinG, coutG, inAxes, outAxes, B, inN, outN, kN, tap } = geometryOf(x, attrs, axes);
  const xin = relayout(x, inAxes).data;
  const gy = relayout(grad, outAxes).data;
  const w = params.get('weight')!;
  const dx = new Float64Array(xin.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(Cout);
  for (let b = 0; b < B; b++) for (let co = 0; co < Cout; co++) {
    const g = Math.floor(co / coutG);
    const yBase = (b * Cout + co) * outN;
    for (let o = 0; o < outN; o++) {
      const go = gy[yBase + o];
      if (go === 0) continue;
      db[co] += go;
      for (let ci = 0; ci < cinG; ci++) {
        const xBase = (b * C + g * cinG + ci) * inN, wBase = (co * cinG + ci) * kN;
        for (let k = 0; k < kN; k++) {
          const i = tap[o * kN + k];
          if (i < 0) continue;
          dx[xBase + i] += w[wBase + k] * go;
          dw[wBase + k] += xin[xBase + i] * go;
        }
      }
    }
  }
  const grads = new Map([['weight', dw]]);
  if (params.has('bias')) grads.set('bias', db);
  return { inputs: [{ axes: inAxes, data: dx }], params: grads };
}

/**
 * What the reference and the backward rule share: sizes, the working layouts [batch.., c, over..]
 * of x and y (every axis that is neither c nor convolved is a batch axis, whatever its name), and
 * the tap table.
 */
export function geometryOf(x: Pick<NamedTensor, 'axes'>, attrs: ReferenceCall['attrs'], axes: readonly AxisPair[]) {
  const over = attrs.over as string[];
  const per = (key: string) => over.map((ax) => Number((attrs[key] as Record<string, Json>)[ax]));
  const [K, S, P, D] = [per('kernel'), per('stride'), per('padding'), per('dilation')];
  const groups = Number(attrs.groups);
  const Cout = Number(attrs.out);
  const C = sizeIn(x.axes, 'c');
  const batch = x.axes.filter(([n]) => n !== 'c' && !over.includes(n));
  const inSize = over.map((ax) => sizeIn(x.axes, ax));
  const outSize = over.map((ax) => sizeIn(axes, ax));
  return {
    Cout, C, cinG: C / groups, coutG: Cout / groups,
    inAxes: [...batch, ['c', C], ...over.map((ax, i): AxisPair => [ax, inSize[i]])] as AxisPair[],
    outAxes: [...batch, ['c', Cout], ...over.map((ax, i): AxisPair => [ax, outSize[i]])] as AxisPair[],
    B: numelOf(batch), inN: product(inSize), outN: product(outSize), kN: product(K),
    tap: tapsOf(inSize, outSize, K, S, P, D),
  };
}

/**
 * tap[o * kN + k]: the input position (flat over the conv axes) that output o reads with kernel tap
 * k, or -1 in the padding; shared by every batch index and channel (reference and backward).
 */
function tapsOf(inSize: readonly number[], outSize: readonly number[], K: readonly number[], S: readonly number[],
  P: readonly number[], D: readonly number[]): Int32Array {
  const outN = product(outSize), kN = product(K);
  const inStrides = stridesOf(inSize.map((n): AxisPair => ['', n]));
  const tap = new Int32Array(outN * kN);
  const oi = outSize.map(() => 0), ki = K.map(() => 0);
  for (let o = 0; o < outN; o++) {
    let r = o;
    for (let a = outSize.length - 1; a >= 0; a--) { oi[a] = r % outSize[a]; r = Math.floor(r / outSize[a]); }
    for (let k = 0; k < kN; k++) {
      let q = k;
      for (let a = K.length - 1; a >= 0; a--) { ki[a] = q % K[a]; q = Math.floor(q / K[a]); }
      let flat = 0;
      for (let a = 0; a < K.length; a++) {
        const pos = oi[a] * S[a] + ki[a] * D[a] - P[a];
        if (pos < 0 || pos >= inSize[a]) { flat = -1; break; }
        flat += pos * inStrides[a];
      }
      tap[o * kN + k] = flat;
    }
  }
  return tap;
}
