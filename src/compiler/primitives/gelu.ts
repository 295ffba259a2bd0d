// gelu(x): elementwise x·Φ(x) with the exact normal CDF.
import { erf } from './erf.ts';
import { unaryPrimitive } from './unary.ts';

export const gelu = unaryPrimitive('gelu', (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  // d/dx x Φ(x) = Φ(x) + x φ(x)
  (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI));
