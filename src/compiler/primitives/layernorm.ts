// layernorm(x, affine: true, eps: 1e-6, axis: c): normalise along one axis, then scale and shift.
import { axisNormPrimitive } from './axis-norm.ts';

export const layernorm = axisNormPrimitive('layernorm', true);
