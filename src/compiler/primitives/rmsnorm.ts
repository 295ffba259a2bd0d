// rmsnorm(x, affine: true, eps: 1e-6, axis: c): divide by the root mean square along one axis, then scale.
import { sizeOf } from './axes.ts';
import type { Primitive } from './types.ts';

export const rmsnorm: Primitive = {
  name: 'rmsnorm',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'affine', kind: 'bool', default: true },
    { name: 'eps', kind: 'number', default: 1e-6 },
    { name: 'axis', kind: 'axis', default: { axis: 'c' } },
  ],
  apply(a) {
    const x = a.tensor('x');
    const axis = a.axis('axis');
    const n = sizeOf(x, axis, a.span('axis'));
    const affine = a.bool('affine');
    const eps = a.positive('eps');
    return {
      inputs: [x], attrs: { affine, eps, axis }, outputs: [{ axes: x.axes, dtype: 'f32' }],
      params: affine ? [{ leaf: 'weight', shape: [n], init: 'ones' }] : [], macs: 0,
    };
  },
};
