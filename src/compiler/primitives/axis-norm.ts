// Shared shape rule of layernorm and rmsnorm: normalise along one axis (default c), keep the axes,
// and with `affine` learn a per-feature scale (and, for layernorm, a shift).
import { sizeOf } from './axes.ts';
import type { ParamShape, Primitive } from './types.ts';

export function axisNormPrimitive(name: string, withBias: boolean): Primitive {
  return {
    name,
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
      const params: ParamShape[] = [];
      if (affine) params.push({ leaf: 'weight', shape: [n], init: 'ones' });
      if (affine && withBias) params.push({ leaf: 'bias', shape: [n], init: 'zeros' });
      return { inputs: [x], attrs: { affine, eps, axis }, outputs: [{ axes: x.axes, dtype: 'f32' }], params, macs: 0 };
    },
  };
}
