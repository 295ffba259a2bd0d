// linear(x, out, bias: true, init: "default", axis: c): a dense layer along one axis, or along
// several at once (`axis: (p, c)`): those axes are contracted together into one feature axis that
// keeps the last one's name. The weight is [in, out] with in = the product of their sizes, its rows
// in row-major order over the axes as listed (first most significant): PyTorch's nn.Linear on x
// permuted to (..., p, c) and flattened, its weight transposed.
import { contractionViews, emitDense, emitElementwise, viewOver, weightGradViews, type LowerCall, type LowerVjpCall, type Value } from './lowering.ts';
import { input } from '../../codegen/kernels/expr.ts';
import type { AxisPair } from '../ir/graph.ts';
import type { Json } from '../ir/json.ts';
import type { NamedTensor } from '../ir/named-tensor.ts';
import { gemmKernel } from '../../codegen/kernels/gemm.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { contiguous } from '../../codegen/kernels/view.ts';
import { alongAxis, relayout, sizeIn } from '../ir/named-tensor.ts';
import { numel } from '../ir/values.ts';
import { sizeOf, withSize } from './axes.ts';
import { fail } from '../ir/diagnostics.ts';
import { INITS } from './inits.ts';
import type { ParamShape, Primitive } from './types.ts';

export const linear: Primitive = {
  name: 'linear',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'out', kind: 'size' },
    { name: 'bias', kind: 'bool', default: true },
    { name: 'init', kind: 'string', default: 'default', choices: INITS },
    { name: 'axis', kind: 'axis', default: { axis: 'c' } },
  ],
  apply(a) {
    const several = a.value('axis').kind === 'tuple';
    const { x, axes } = several ? a.tensorAxes('x', 'axis') : { x: a.tensor('x'), axes: [a.tensorAxis('x', 'axis').axis] };
    if (axes.length === 0) fail('VDM015', a.span('axis'), `${a.what('axis')} names no axis`, 'name the axes to contract, e.g. axis: (p, c)');
    const axis = axes[axes.length - 1];
    const inSize = axes.reduce((n, m) => n * sizeOf(x, m, a.span('axis')), 1);
    const out = a.size('out');
    const bias = a.bool('bias');
    const init = a.string('init');
    const params: ParamShape[] = [{ leaf: 'weight', shape: [inSize, out], init }];
    if (bias) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    // One axis keeps the attributes of before; several are listed in `over` (the last is `axis`).
    const attrs: Record<string, Json> = { out, bias, init, axis };
    if (axes.length > 1) attrs.over = axes;
    return {
      inputs: [x],
      attrs,
      outputs: [{ axes: withSize(x.axes.filter(([n]) => !axes.includes(n) || n === axis), axis, out), dtype: 'f32' }],
      params,
      macs: (numel(x.axes) / inSize) * inSize * out,
    };
  },
  fans: (_leaf, shape) => [shape[0], shape[shape.length - 1]],
  // One GEMM: the other axes are rows, the weight [in, out] is B, the bias its epilogue, and what
  // fusion folded into it (call.gemm: an activation, gate and residual; a layer norm and modulate of x).
  // Several axes: x is first copied contiguous over (others..., over...), so the contracted axes are
  // one run of K values that the GEMM reads as a single axis named like the output feature axis.
  lower(call) {
    emitDense(call, {
      src: merged(call, call.inputs[0], 'x'), dst: call.out, weight: call.params.get('weight')!, bias: call.params.get('bias'),
      axis: String(call.attrs.axis), fusion: call.gemm,
    });
  },
  lowerVjp(call) {
    const axis = String(call.attrs.axis);
    const over = overOf(call.attrs);
    const dx = call.inputGrads[0];
    const x = merged(call, call.inputs[0], 'xb');
    // dx for several axes: the GEMM writes it merged, then a copy spreads it back over x's layout
    const dxm = dx && over.length > 1 ? { buffer: call.scratch('dx', numel(dx.axes)), axes: x.axes } : dx;
    emitLinearVjp(call, {
      x, g: call.grad, axis, weight: call.params.get('weight')!,
      dx: dxm, dw: call.paramGrads.get('weight')!, db: call.paramGrads.get('bias'),
    });
    if (dx && dxm && dxm !== dx) emitElementwise(call, dx.axes, [{ buffer: dxm.buffer, axes: split(call.inputs[0], over) }], dx, input('in0'));
  },
  // dx[.., i] = sum_o g[.., o] w[i, o]; dw[i, o] = sum_rows x[.., i] g[.., o]; db[o] = sum_rows g[.., o]
  vjp({ inputs: [x0], params, attrs, grad }) {
    const axis = String(attrs.axis);
    const out = Number(attrs.out);
    const w = params.get('weight')!;
    const over = overOf(attrs);
    const x = mergeAxes(x0, over, axis);
    const inSize = sizeIn(x.axes, axis);
    // rows = every other axis, in x's order; the contracted axis last on both sides
    const rowsAxes = x.axes.filter(([n]) => n !== axis);
    const xs = relayout(x, [...rowsAxes, [axis, inSize]]).data;
    const gs = relayout(grad, [...rowsAxes, [axis, out]]).data;
    const rows = xs.length / inSize;
    const dx = new Float64Array(xs.length);
    const dw = new Float64Array(inSize * out);
    const db = new Float64Array(out);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < out; o++) {
        const go = gs[r * out + o];
        if (go === 0) continue;
        db[o] += go;
        for (let i = 0; i < inSize; i++) {
          dx[r * inSize + i] += go * w[i * out + o];
          dw[i * out + o] += xs[r * inSize + i] * go;
        }
      }
    }
    const grads = new Map([['weight', dw]]);
    if (params.has('bias')) grads.set('bias', db);
    // several axes: the merged gradient is x's data over (others..., over...) in that order
    const dxAxes: AxisPair[] = over.length > 1 ? [...rowsAxes, ...over.map((n) => [n, sizeIn(x0.axes, n)] as const)] : [...rowsAxes, [axis, inSize]];
    return { inputs: [{ axes: dxAxes, data: dx }], params: grads };
  },
  // y[.., o] = sum_i x[.., i] weight[i, o] + bias[o], along `axis` (several: along their flattening)
  reference({ inputs: [x], params, attrs }) {
    const out = Number(attrs.out);
    const w = params.get('weight')!;
    const b = params.get('bias');
    return alongAxis(mergeAxes(x, overOf(attrs), String(attrs.axis)), String(attrs.axis), out, (src, dst) => {
      for (let o = 0; o < out; o++) {
        let acc = b ? b[o] : 0;
        for (let i = 0; i < src.length; i++) acc += src[i] * w[i * out + o];
        dst[o] = acc;
      }
    });
  },
};

/** The contracted axes: `over` for several, else the one `axis`. */
export const overOf = (attrs: Readonly<Record<string, Json>>): string[] =>
  (Array.isArray(attrs.over) ? (attrs.over as string[]) : [String(attrs.axis)]);

/** x's axes other than `over`, then `over` in its order. */
const split = (x: { axes: readonly AxisPair[] }, over: readonly string[]): AxisPair[] =>
  [...x.axes.filter(([n]) => !over.includes(n)), ...over.map((n) => x.axes.find(([m]) => m === n)!)];

/** `x` with the axes `over` flattened (row-major, in that order) into one axis named `axis`. */
function mergeAxes(x: NamedTensor, over: readonly string[], axis: string): NamedTensor {
  if (over.length === 1) return x;
  const t = relayout(x, split(x, over));
  const others = t.axes.slice(0, t.axes.length - over.length);
  const k = t.axes.slice(others.length).reduce((n, [, s]) => n * s, 1);
  return { axes: [...others, [axis, k]], data: t.data };
}

/** On the GPU: the value itself for one axis; for several, a contiguous copy over (others..., over...), seen merged. */
function merged(call: Pick<LowerCall, 'emit' | 'scratch' | 'attrs'>, x: Value, name: string): Value {
  const over = overOf(call.attrs);
  if (over.length === 1) return x;
  const target = split(x, over);
  const copy: Value = { buffer: call.scratch(name, numel(x.axes)), axes: target };
  emitElementwise(call, target, [x], copy, input('in0'));
  const others = target.slice(0, target.length - over.length);
  return { buffer: copy.buffer, axes: [...others, [String(call.attrs.axis), numel(target.slice(others.length))]] };
}

/**
 * The backward of a dense layer along `axis` of x (weight [in, out], value g's `axis` out wide), as
 * three GEMMs through transposed views, no copies: dx = g w^T, dw = x^T g (partial products per
 * batch entry summed when the rows do not coalesce into one axis), db = the row sum of g.
 */
export function emitLinearVjp(call: Pick<LowerVjpCall, 'emit' | 'scratch' | 'adapter'>, p: {
  x: Value; g: Value; axis: string; weight: string; dx: Value | null; dw: string; db?: string;
}): void {
  const { x, g, axis } = p;
  const inSize = x.axes.find(([n]) => n === axis)![1];
  const out = g.axes.find(([n]) => n === axis)![1];
  if (p.dx) {
    const { a, out: o } = contractionViews(g, p.dx, axis);
    call.emit(gemmKernel({ a, b: { shape: [out, inSize], strides: [1, out], offset: 0 }, out: o, adapter: call.adapter }), [g.buffer, p.weight, p.dx.buffer]);
  }
  const { a, b, batch } = weightGradViews(x, g, axis, axis);
  const partials = batch.length ? call.scratch('dw', batch.reduce((m, n) => m * n, 1) * inSize * out) : p.dw;
  call.emit(gemmKernel({ a, b, out: contiguous([...batch, inSize, out]), adapter: call.adapter }), [x.buffer, g.buffer, partials]);
  if (batch.length) {
    call.emit(reduceKernel({ op: 'sum', x: contiguous([...batch, inSize, out]), axes: batch.map((_, i) => i), y: contiguous([inSize, out]) }), [partials, p.dw]);
  }
  if (p.db) {
    const k = g.axes.findIndex(([n]) => n === axis);
    call.emit(reduceKernel({ op: 'sum', x: viewOver(g, g.axes), axes: g.axes.flatMap((_, i) => (i === k ? [] : [i])), y: contiguous([out]) }), [g.buffer, p.db]);
  }
}
