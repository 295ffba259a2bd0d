// expand(x, sizes): add new axes as a broadcast view (e.g. an image repeated over t).
import { viewOver } from './lowering.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { fail } from '../ir/diagnostics.ts';
import { checkSize } from '../ir/convert.ts';
import { relayout, sumTo } from '../ir/named-tensor.ts';
import { formatAxes, type Axis } from '../ir/values.ts';
import { emitCopy } from './slice.ts';
import type { Primitive } from './types.ts';

export const expand: Primitive = {
  name: 'expand',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'sizes', kind: 'named-sizes' }],
  apply(a) {
    const x = a.tensor('x');
    const sizes = a.namedNumbers('sizes');
    const added: Axis[] = [];
    for (const [n, s] of sizes) {
      if (x.axes.some(([m]) => m === n)) fail('VDM022', a.span('sizes'), `axis '${n}' is already in the tensor ${formatAxes(x.axes)}`);
      checkSize(s, a.span('sizes'), `size of axis '${n}'`);
      added.push([n, s]);
    }
    return {
      inputs: [x], attrs: { sizes: Object.fromEntries(sizes) },
      outputs: [{ axes: [...x.axes, ...added], dtype: x.dtype }],
      params: [], macs: 0,
    };
  },
  // One broadcast copy: x viewed over the node's axes reads stride 0 along the new ones.
  lower(call) {
    const [x] = call.inputs;
    emitCopy(call, call.out.axes, viewOver(x, call.out.axes), viewOver(call.out, call.out.axes), x.buffer);
  },
  // One reduction of the gradient over the added axes into x's layout.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const g = call.grad;
    const kept = new Set(dx.axes.map(([n]) => n));
    const axes = g.axes.flatMap(([n], i) => (kept.has(n) ? [] : [i]));
    call.emit(reduceKernel({ op: 'sum', x: viewOver(g, g.axes), axes, y: viewOver(dx, g.axes.filter(([n]) => kept.has(n))) }), [g.buffer, dx.buffer]);
  },
  // A broadcast's gradient: summed over the added axes.
  vjp: ({ inputs: [x], grad }) => ({ inputs: [sumTo(grad, x.axes)] }),
  // relayout broadcasts by name: the new axes read x with stride 0.
  reference: ({ inputs: [x], axes }) => relayout(x, axes),
};
