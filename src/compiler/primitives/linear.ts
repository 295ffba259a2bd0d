// linear(x, out, bias: true, init: "default", axis: c): a dense layer along one axis.
import { contractionViews, emitDense, viewOver, weightGradViews, type LowerVjpCall, type Value } from './lowering.ts';
import { gemmKernel } from '../../codegen/kernels/gemm.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { contiguous } from '../../codegen/kernels/view.ts';
import { alongAxis, relayout, sizeIn } from '../ir/named-tensor.ts';
import { numel } from '../ir/values.ts';
import { withSize } from './axes.ts';
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
    const { x, axis, size: inSize } = a.tensorAxis('x', 'axis');
    const out = a.size('out');
    const bias = a.bool('bias');
    const init = a.string('init');
    const params: ParamShape[] = [{ leaf: 'weight', shape: [inSize, out], init }];
    if (bias) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return {
      inputs: [x],
      attrs: { out, bias, init, axis },
      outputs: [{ axes: withSize(x.axes, axis, out), dtype: 'f32' }],
      params,
      macs: (numel(x.axes) / inSize) * inSize * out,
    };
  },
  fans: (_leaf, shape) => [shape[0], shape[shape.length - 1]],
  // One GEMM: the other axes are rows, the weight [in, out] is B, the bias its epilogue, and what
  // fusion folded into it (call.gemm: an activation, gate and residual; a layer norm and modulate of x).
  lower(call) {
    emitDense(call, {
      src: call.inputs[0], dst: call.out, weight: call.params.get('weight')!, bias: call.params.get('bias'),
      axis: String(call.attrs.axis), fusion: call.gemm,
    });
  },
  lowerVjp(call) {
    const axis = String(call.attrs.axis);
    emitLinearVjp(call, {
      x: call.inputs[0], g: call.grad, axis, weight: call.params.get('weight')!,
      dx: call.inputGrads[0], dw: call.paramGrads.get('weight')!, db: call.paramGrads.get('bias'),
    });
  },
  // dx[.., i] = sum_o g[.., o] w[i, o]; dw[i, o] = sum_rows x[.., i] g[.., o]; db[o] = sum_rows g[.., o]
  vjp({ inputs: [x], params, attrs, grad }) {
    const axis = String(attrs.axis);
    const out = Number(attrs.out);
    const w = params.get('weight')!;
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
    return { inputs: [{ axes: [...rowsAxes, [axis, inSize]], data: dx }], params: grads };
  },
  // y[.., o] = sum_i x[.., i] weight[i, o] + bias[o], along `axis`
  reference({ inputs: [x], params, attrs }) {
    const out = Number(attrs.out);
    const w = params.get('weight')!;
    const b = params.get('bias');
    return alongAxis(x, String(attrs.axis), out, (src, dst) => {
      for (let o = 0; o < out; o++) {
        let acc = b ? b[o] : 0;
        for (let i = 0; i < src.length; i++) acc += src[i] * w[i * out + o];
        dst[o] = acc;
      }
    });
  },
};

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
