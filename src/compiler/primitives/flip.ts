// flip(x, axis): reverse the order along one axis (for bidirectional propagation).
import { alongAxis, sizeIn } from '../named-tensor.ts';
import { sizeOf } from './axes.ts';
import type { Primitive } from './types.ts';

export const flip: Primitive = {
  name: 'flip',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'axis', kind: 'axis' },
  ],
  apply(a) {
    const x = a.tensor('x');
    const axis = a.axis('axis');
    sizeOf(x, axis, a.span('axis'));
    return { inputs: [x], attrs: { axis }, outputs: [{ axes: x.axes, dtype: x.dtype }], params: [], macs: 0 };
  },
  reference({ inputs: [x], attrs }) {
    const axis = String(attrs.axis);
    const n = sizeIn(x.axes, axis);
    return alongAxis(x, axis, n, (src, dst) => { for (let k = 0; k < n; k++) dst[k] = src[n - 1 - k]; });
  },
};
