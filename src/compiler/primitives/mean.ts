// mean(x, over): average over axes, removing them.
import { emitElementwise, viewOver } from './lowering.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { numelOf, relayout, zipWith } from '../ir/named-tensor.ts';
import type { Primitive } from './types.ts';

export const mean: Primitive = {
  name: 'mean',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'over', kind: 'axes' }],
  apply(a) {
    const { x, axes: over } = a.tensorAxes('x', 'over');
    return {
      inputs: [x], attrs: { over },
      outputs: [{ axes: x.axes.filter(([n]) => !over.includes(n)), dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
  // One reduction over the named axes of x (in x's own order); y is the node's buffer over the kept axes.
  lower(call) {
    const [x] = call.inputs;
    const over = call.attrs.over as string[];
    const axes = x.axes.flatMap(([n], i) => (over.includes(n) ? [i] : []));
    const kept = x.axes.filter(([n]) => !over.includes(n));
    const spec = reduceKernel({ op: 'mean', x: viewOver(x, x.axes), axes, y: viewOver(call.out, kept) });
    call.emit(spec, [x.buffer, call.out.buffer]);
  },
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const over = call.attrs.over as string[];
    const n = numelOf(dx.axes.filter(([m]) => over.includes(m)));
    emitElementwise(call, dx.axes, [call.grad], dx, { op: 'mul', a: { op: 'input', name: 'in0' }, b: { op: 'const', value: 1 / n } });
  },
  // Every averaged entry gets 1/n of its output's gradient (broadcast by name over the `over` axes).
  vjp({ inputs: [x], attrs, grad }) {
    const over = attrs.over as string[];
    const n = numelOf(x.axes.filter(([m]) => over.includes(m)));
    return { inputs: [zipWith(x.axes, [grad], (g) => g / n)] };
  },
  // Laid out as [...kept, ...over], each output is the average of one contiguous block.
  reference({ inputs: [x], attrs }) {
    const over = attrs.over as string[];
    const kept = x.axes.filter(([n]) => !over.includes(n));
    const gone = x.axes.filter(([n]) => over.includes(n));
    const t = relayout(x, [...kept, ...gone]);
    const n = numelOf(gone);
    const out = new Float64Array(numelOf(kept));
    for (let o = 0; o < out.length; o++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += t.data[o * n + k];
      out[o] = acc / n;
    }
    return { axes: kept, data: out };
  },
};
