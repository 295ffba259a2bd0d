// split(x, n, axis: c) -> a tuple of n equal parts along the axis.
import { fail } from '../diagnostics.ts';
import { sizeOf, withSize } from './axes.ts';
import type { Primitive } from './types.ts';

export const split: Primitive = {
  name: 'split',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'n', kind: 'size' },
    { name: 'axis', kind: 'axis', default: { axis: 'c' } },
  ],
  apply(a) {
    const x = a.tensor('x');
    const axis = a.axis('axis');
    const size = sizeOf(x, axis, a.span('axis'));
    const n = a.size('n');
    if (size % n !== 0) fail('VDM030', a.span('n'), `cannot split ${axis}=${size} into ${n} equal parts`);
    const axes = withSize(x.axes, axis, size / n);
    return {
      inputs: [x], attrs: { n, axis },
      outputs: Array.from({ length: n }, (_, index) => ({ axes, dtype: x.dtype, attrs: { index } })),
      tuple: true,
      params: [], macs: 0,
    };
  },
};
