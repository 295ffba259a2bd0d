// conv_transpose(x, over, kernel, out, stride, padding, output_padding, dilation, groups, bias): the
// transposed convolution over named axes (a U-Net decoder's learned upsampling). It is the data
// gradient of the conv that maps its output back to its input, so it reuses conv's geometry,
// reference loops and kernels with the roles swapped. The weight is PyTorch's ConvTranspose layout
// [c, out / groups, kernel in the order of over], which is exactly that conv's [out, c / groups, k].
// Output size per axis: (n - 1) s - 2 p + d (k - 1) + output_padding + 1.
import { fail } from '../ir/diagnostics.ts';
import { asPerAxis } from '../ir/convert.ts';
import type { AxisPair } from '../ir/graph.ts';
import type { Json } from '../ir/json.ts';
import { relayout, type NamedTensor } from '../ir/named-tensor.ts';
import { numel } from '../ir/values.ts';
import { product, resolvePerAxis, sizeOf, withSize, withSizes } from './axes.ts';
import { convLayout, geometryOf, positive } from './conv.ts';
import { emitElementwise, viewOver, type LowerCall, type LowerVjpCall, type Value } from './lowering.ts';
import type { ParamShape, Primitive, ReferenceCall, VjpCall, VjpResult } from './types.ts';
import { convKernel } from '../../codegen/kernels/conv.ts';
import {
  convBackwardDataKernel, convFlipWeightKernel, convTransposedPhases,
} from '../../codegen/kernels/conv-backward.ts';
import { convWeightGradientKernel } from '../../codegen/kernels/conv-backward-lanes.ts';
import { binary, input } from '../../codegen/kernels/expr.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { contiguous } from '../../codegen/kernels/view.ts';

export const convTranspose: Primitive = {
  name: 'conv_transpose',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axes' },
    { name: 'kernel', kind: 'per-axis' },
    { name: 'out', kind: 'size', default: { computed: 'size(x, c)' } },
    { name: 'stride', kind: 'per-axis', default: 1 },
    { name: 'padding', kind: 'per-axis', default: 0 },
    { name: 'output_padding', kind: 'per-axis', default: 0 },
    { name: 'dilation', kind: 'per-axis', default: 1 },
    { name: 'groups', kind: 'size', default: 1 },
    { name: 'bias', kind: 'bool', default: true },
  ],
  apply(a) {
    const { x, axes: over } = a.tensorAxes('x', 'over');
    if (over.includes('c') || over.includes('b')) {
      fail('VDM017', a.span('over'), `'over' of conv_transpose cannot include the ${over.includes('c') ? 'channel axis c' : 'batch axis b'}`);
    }
    if (over.length > 3) fail('VDM034', a.span('over'), `conv_transpose runs over at most 3 axes, not ${over.length}`, 'split it into transposed convolutions over fewer axes');
    const c = sizeOf(x, 'c', a.span('x'));
    const out = a.has('out') ? a.size('out') : c;
    const per = (arg: string, fallback?: number) => resolvePerAxis(asPerAxis(a.value(arg), a.span(arg), a.what(arg)), over, a.span(arg), a.what(arg), fallback);
    const kernel = positive(per('kernel'), a, 'kernel');
    const stride = positive(per('stride', 1), a, 'stride');
    const dilation = positive(per('dilation', 1), a, 'dilation');
    const padding = per('padding', 0);
    const extra = per('output_padding', 0);
    const groups = a.size('groups');
    const bias = a.bool('bias');
    if (c % groups !== 0 || out % groups !== 0) fail('VDM030', a.span('groups'), `groups=${groups} must divide both c=${c} and out=${out}`);
    const sizes = new Map<string, number>([['c', out]]);
    for (const ax of over) {
      const [k, s, d, p, e] = [kernel.get(ax)!, stride.get(ax)!, dilation.get(ax)!, padding.get(ax)!, extra.get(ax)!];
      if (p < 0) fail('VDM034', a.span('padding'), `padding ${ax}=${p} is negative`);
      // As PyTorch: the extra positions must be fewer than the stride or the dilation, else they would
      // not come from any input position the conv it transposes could read.
      if (e < 0 || e >= Math.max(s, d)) {
        fail('VDM034', a.span('output_padding'), `output_padding ${ax}=${e} must be at least 0 and below stride ${s} or dilation ${d}`,
          'output_padding picks one of the stride-many output sizes that map to the same input size: 0 <= output_padding < stride');
      }
      const size = (sizeOf(x, ax, a.span('over')) - 1) * s - 2 * p + d * (k - 1) + e + 1;
      if (size < 1) fail('VDM034', a.span('padding'), `padding ${ax}=${p} leaves no output along ${ax} (size would be ${size})`);
      sizes.set(ax, size);
    }
    const kernelShape = over.map((ax) => kernel.get(ax)!);
    const params: ParamShape[] = [{ leaf: 'weight', shape: [c, out / groups, ...kernelShape], init: 'default' }];
    if (bias) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return {
      inputs: [x],
      attrs: {
        over, kernel: Object.fromEntries(kernel), out, stride: Object.fromEntries(stride), padding: Object.fromEntries(padding),
        output_padding: Object.fromEntries(extra), dilation: Object.fromEntries(dilation), groups, bias,
      },
      outputs: [{ axes: withSize(withSizes(x.axes, sizes), 'c', out), dtype: 'f32' }],
      params,
      // every input element meets every tap and the out / groups channels of its group
      macs: numel(x.axes) * (out / groups) * product(kernelShape),
    };
  },
  // PyTorch's ConvTranspose fans (from its weight [c, out/groups, k...]): fan_in = out/groups * prod(k).
  fans: (leaf, shape) => (leaf === 'weight'
    ? [product(shape.slice(1)), shape[0] * product(shape.slice(2))]
    : [shape[0] ?? 1, shape[shape.length - 1] ?? 1]),
  reference: referenceOf,
  vjp: vjpOf,
  lower: lowerConvTranspose,
  lowerVjp: lowerConvTransposeVjp,
};

/** The attributes of the conv this node transposes: from the node's output (c = out) to its input. */
const convAttrs = (attrs: Readonly<Record<string, Json>>, inChannels: number) => ({ ...attrs, out: inChannels });

/**
 * The conv from y (this node's output) to x: its geometry (conv.ts) with x and y swapped. In its
 * terms conv-in = y [B, out, over] and conv-out = x [B, c, over], and tap[o * kN + k] is the y
 * position that x position o meets with tap k (-1 in the padding or past the output padding).
 */
function transposedGeometry(x: NamedTensor, attrs: Readonly<Record<string, Json>>, axes: readonly AxisPair[]) {
  const c = x.axes.find(([n]) => n === 'c')![1];
  return geometryOf({ axes }, convAttrs(attrs, c), x.axes);
}

/**
 * y[.., g * out/groups + j, tap(o, k)] += weight[ci, j, k] x[.., ci, o] + bias: every input element
 * spreads over the taps (g = ci / (c / groups)); the adjoint of conv's gather.
 */
function referenceOf({ inputs: [x], params, attrs, axes }: ReferenceCall): NamedTensor {
  const G = transposedGeometry(x, attrs, axes);
  const xs = relayout(x, G.outAxes).data;
  const w = params.get('weight')!;
  const bias = params.get('bias');
  const y = new Float64Array(G.B * G.C * G.inN);
  for (let b = 0; b < G.B; b++) for (let ci = 0; ci < G.Cout; ci++) {
    const g = Math.floor(ci / G.coutG);
    for (let o = 0; o < G.outN; o++) {
      const v = xs[(b * G.Cout + ci) * G.outN + o];
      if (v === 0) continue;
      for (let j = 0; j < G.cinG; j++) {
        const yBase = (b * G.C + g * G.cinG + j) * G.inN, wBase = (ci * G.cinG + j) * G.kN;
        for (let k = 0; k < G.kN; k++) {
          const i = G.tap[o * G.kN + k];
          if (i >= 0) y[yBase + i] += w[wBase + k] * v;
        }
      }
    }
  }
  if (bias) for (let b = 0; b < G.B; b++) for (let c = 0; c < G.C; c++) for (let i = 0; i < G.inN; i++) y[(b * G.C + c) * G.inN + i] += bias[c];
  return { axes: G.inAxes, data: y };
}

/**
 * dx[.., ci, o] = sum_{j, k} weight[ci, j, k] dy[.., g * out/groups + j, tap(o, k)] (the conv of dy);
 * dweight[ci, j, k] = sum x[.., ci, o] dy[.., .., tap(o, k)]; dbias = dy summed over all but c.
 */
function vjpOf({ inputs: [x], params, attrs, axes, grad }: VjpCall): VjpResult {
  const G = transposedGeometry(x, attrs, axes);
  const xs = relayout(x, G.outAxes).data;
  const gy = relayout(grad, G.inAxes).data;
  const w = params.get('weight')!;
  const dx = new Float64Array(xs.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(G.C);
  for (let b = 0; b < G.B; b++) for (let c = 0; c < G.C; c++) for (let i = 0; i < G.inN; i++) db[c] += gy[(b * G.C + c) * G.inN + i];
  for (let b = 0; b < G.B; b++) for (let ci = 0; ci < G.Cout; ci++) {
    const g = Math.floor(ci / G.coutG);
    for (let o = 0; o < G.outN; o++) {
      const v = xs[(b * G.Cout + ci) * G.outN + o];
      let acc = 0;
      for (let j = 0; j < G.cinG; j++) {
        const yBase = (b * G.C + g * G.cinG + j) * G.inN, wBase = (ci * G.cinG + j) * G.kN;
        for (let k = 0; k < G.kN; k++) {
          const i = G.tap[o * G.kN + k];
          if (i < 0) continue;
          acc += w[wBase + k] * gy[yBase + i];
          dw[wBase + k] += v * gy[yBase + i];
        }
      }
      dx[(b * G.Cout + ci) * G.outN + o] = acc;
    }
  }
  const grads = new Map([['weight', dw]]);
  if (params.has('bias')) grads.set('bias', db);
  return { inputs: [{ axes: G.outAxes, data: dx }], params: grads };
}

/** conv.ts's layout of the conv from y to x (its slices view y as conv-in, x as conv-out). */
function layoutOf(call: LowerCall, y: Value, x: Value) {
  const c = x.axes.find(([n]) => n === 'c')![1];
  const L = convLayout(convAttrs(call.attrs, c), y, x);
  const weight = L.weightOf(L.Cout, L.C / L.groups);
  return { L, weight, settings: { weight, stride: L.stride, dilation: L.dilation, padding: L.padding, groups: L.groups } };
}

/**
 * The forward is the conv's data gradient with dy = x: the conv kernel over the flipped weight (bias
 * in its epilogue), once per phase of a stride (convTransposedPhases), else the gather kernel into
 * a scratch, then + bias.
 */
function lowerConvTranspose(call: LowerCall): void {
  const x = call.inputs[0], y = call.out;
  const { L, weight, settings } = layoutOf(call, y, x);
  const w = call.params.get('weight')!;
  const bias = call.params.get('bias');
  const flipped = L.weightOf(L.C, L.Cout / L.groups);
  const transposed = L.slices.map((s) => convTransposedPhases({ ...settings, x: s.x, out: s.out }, flipped));
  if (transposed.every((t) => t !== null)) {
    const buffer = call.scratch('flipped', L.C * (L.Cout / L.groups) * L.kN);
    call.emit(convFlipWeightKernel({ weight, flipped, groups: L.groups }), [w, buffer]);
    for (const t of transposed.flat()) {
      call.emit(convKernel({ ...t!, bias: bias ? contiguous([L.C]) : undefined, adapter: call.adapter }), [x.buffer, buffer, ...(bias ? [bias] : []), y.buffer]);
    }
    return;
  }
  // the gather kernel writes every element of its target; a bias is added in a second pass
  const target = bias ? call.scratch('sum', numel(y.axes)) : y.buffer;
  for (const s of L.slices) call.emit(convBackwardDataKernel({ ...settings, x: s.x, out: s.out }), [x.buffer, w, target]);
  if (bias) emitElementwise(call, y.axes, [{ buffer: target, axes: y.axes }, { buffer: bias, axes: [['c', L.C]] }], y, binary('add', input('in0'), input('in1')));
}

/** dx by the conv kernel over dy, dweight by conv's weight-gradient kernel with x and dy swapped, dbias by a sum. */
function lowerConvTransposeVjp(call: LowerVjpCall): void {
  const x = call.inputs[0];
  const [dx] = call.inputGrads;
  const same = (a: Value, b: Value) => a.axes.length === b.axes.length && a.axes.every(([n], i) => n === b.axes[i][0]);
  if (!same(call.grad, call.out) || (dx && !same(dx, x))) throw new Error('conv_transpose backward: gradients must be laid out as the values they belong to');
  const { L, settings } = layoutOf(call, call.out, x);
  const w = call.params.get('weight')!;
  if (dx) for (const s of L.slices) call.emit(convKernel({ ...settings, x: s.x, out: s.out, adapter: call.adapter }), [call.grad.buffer, w, dx.buffer]);
  const dw = call.paramGrads.get('weight')!;
  const n = L.Cout * (L.C / L.groups) * L.kN;
  const k = L.slices.length;
  const partials = k > 1 ? call.scratch('dweight', k * n) : dw;
  L.slices.forEach((s, i) => {
    call.emit(convWeightGradientKernel({ ...settings, weight: { ...settings.weight, offset: i * n }, x: s.x, out: s.out, adapter: call.adapter }), [call.grad.buffer, x.buffer, partials]);
  });
  if (k > 1) call.emit(reduceKernel({ op: 'sum', x: contiguous([k, n]), axes: [0], y: contiguous([n]) }), [partials, dw]);
  const db = call.paramGrads.get('bias');
  if (db) {
    const g = call.grad;
    const c = g.axes.findIndex(([m]) => m === 'c');
    call.emit(reduceKernel({ op: 'sum', x: viewOver(g, g.axes), axes: g.axes.flatMap((_, i) => (i === c ? [] : [i])), y: contiguous([L.C]) }), [g.buffer, db]);
  }
}
