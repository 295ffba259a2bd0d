// concat(a, b, ..., axis: c) or concat(tuple, axis: c): join along one axis; every other axis must
// match by name and size (VDM024).
import { fail } from '../diagnostics.ts';
import { formatAxes } from '../values.ts';
import { sizeOf, withSize } from './axes.ts';
import type { Primitive } from './types.ts';

export const concat: Primitive = {
  name: 'concat',
  args: [
    { name: 'xs', kind: 'tensors', variadic: true },
    { name: 'axis', kind: 'axis', default: { axis: 'c' } },
  ],
  apply(a) {
    const xs = a.tensors('xs');
    const axis = a.axis('axis');
    const first = xs[0].tensor;
    let total = 0;
    for (const { tensor, span } of xs) {
      total += sizeOf(tensor, axis, span);
      const others = (t: typeof tensor) => t.axes.filter(([n]) => n !== axis);
      const want = others(first);
      const got = others(tensor);
      const same = want.length === got.length && want.every(([n, s]) => got.some(([m, z]) => m === n && z === s));
      if (!same) {
        fail('VDM024', span, `cannot concat ${formatAxes(tensor.axes)} with ${formatAxes(first.axes)} along '${axis}'`,
          'all axes except the joined one must have the same names and sizes');
      }
      if (tensor.dtype !== first.dtype) fail('VDM024', span, `cannot concat ${tensor.dtype} with ${first.dtype}`);
    }
    return {
      inputs: xs.map((x) => x.tensor), attrs: { axis },
      outputs: [{ axes: withSize(first.axes, axis, total), dtype: first.dtype }],
      params: [], macs: 0,
    };
  },
};
