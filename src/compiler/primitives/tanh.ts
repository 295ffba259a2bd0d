// tanh(x): elementwise hyperbolic tangent.
import { unaryPrimitive } from './unary.ts';

export const tanh = unaryPrimitive('tanh', (x) => Math.tanh(x), (_x, y) => 1 - y * y);
