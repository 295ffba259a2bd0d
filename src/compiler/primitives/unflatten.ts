// unflatten(x, axis, sizes): the inverse of flatten: one axis read as the named axes of `sizes`,
// row-major (the last fastest), placed where it stood; their sizes must multiply to its size.
// One entry renames the axis: unflatten(x, n, sizes: (l: 226)).
import { checkSize } from '../ir/convert.ts';
import { fail } from '../ir/diagnostics.ts';
import type { AxisPair } from '../ir/graph.ts';
import { didYouMean } from '../ir/suggest.ts';
import { formatAxes } from '../ir/values.ts';
import { merge, splitView, unmerge } from './flatten.ts';
import { viewOver } from './lowering.ts';
import { emitCopy } from './slice.ts';
import { product } from './axes.ts';
import type { Primitive } from './types.ts';

export const unflatten: Primitive = {
  name: 'unflatten',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'axis', kind: 'axis' }, { name: 'sizes', kind: 'named-sizes' }],
  apply(a) {
    const x = a.tensor('x');
    const axis = a.axis('axis');
    const sizes = a.namedNumbers('sizes');
    const names = x.axes.map(([n]) => n);
    if (axis === 'c') fail('VDM047', a.span('axis'), 'unflatten cannot split the channel axis c', 'unflatten a token axis (one that flatten made)');
    const n = x.axes.find(([m]) => m === axis)?.[1];
    if (n === undefined) {
      fail('VDM047', a.span('axis'), `unflatten axis '${axis}', which is not in the tensor ${formatAxes(x.axes)}`, didYouMean(axis, names) ?? 'give an axis of the tensor');
    }
    if (sizes.length === 0) fail('VDM047', a.span('sizes'), 'unflatten needs at least one axis in sizes', `e.g. sizes: (t: ${n})`);
    for (const [m, s] of sizes) {
      if (m === 'c' || names.includes(m)) {
        fail('VDM047', a.span('sizes'), `unflatten into '${m}', which is already an axis of the tensor ${formatAxes(x.axes)}`, 'give each new axis a name the tensor does not have');
      }
      checkSize(s, a.span('sizes'), `size of axis '${m}'`);
    }
    const total = product(sizes.map(([, s]) => s));
    if (total !== n) {
      fail('VDM046', a.span('sizes'), `unflatten sizes (${sizes.map(([m, s]) => `${m}: ${s}`).join(', ')}) hold ${total} values, but ${axis}=${n}`,
        'the sizes must multiply to the size of the axis');
    }
    return {
      inputs: [x], attrs: { axis, sizes: Object.fromEntries(sizes) },
      outputs: [{ axes: x.axes.flatMap((ax) => (ax[0] === axis ? sizes : [ax])), dtype: x.dtype }],
      params: [], macs: 0,
    };
  },
  lower(call) {
    const [x] = call.inputs;
    const space = call.out.axes;
    emitCopy(call, space, splitView(x, String(call.attrs.axis), partsOf(call.attrs.sizes), space), viewOver(call.out, space), x.buffer);
  },
  // The same copy backwards: the gradient over the new axes written as `axis`.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const space = call.grad.axes;
    emitCopy({ ...call, out: dx }, space, viewOver(call.grad, space), splitView(dx, String(call.attrs.axis), partsOf(call.attrs.sizes), space), call.grad.buffer);
  },
  reference: ({ inputs: [x], attrs }) => unmerge(x, String(attrs.axis), partsOf(attrs.sizes)),
  // A relabelling of the values: the gradient is flatten of the output's gradient.
  vjp: ({ attrs, grad }) => ({ inputs: [merge(grad, partsOf(attrs.sizes).map(([n]) => n), String(attrs.axis))] }),
};

const partsOf = (sizes: unknown): AxisPair[] => Object.entries(sizes as Record<string, number>).map(([n, s]) => [n, Number(s)]);
