// layernorm(x, affine: true, eps: 1e-6, axis: c): normalise along one axis, then scale and shift.
import { sizeOf } from './axes.ts';
import type { ParamShape, Primitive } from './types.ts';

export const layernorm: Primitive = {
  name: 'layernorm',
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
    const params: ParamShape[] = affine
      ? [{ leaf: 'weight', shape: [n], init: 'ones' }, { leaf: 'bias', shape: [n], init: 'zeros' }]
      : [];
    return { inputs: [x], attrs: { affine, eps, axis }, outputs: [{ axes: x.axes, dtype: 'f32' }], params, macs: 0 };
  },
};
