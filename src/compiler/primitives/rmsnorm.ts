// rmsnorm(x, affine: true, eps: 1e-6, axis: c): divide by the root mean square along one axis, then scale.
import { axisNormPrimitive } from './axis-norm.ts';

export const rmsnorm = axisNormPrimitive('rmsnorm', false);
