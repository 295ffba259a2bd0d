// sqrt(x): elementwise square root (also on numbers: `sqrt(d)`).
import { unaryPrimitive } from './unary.ts';

export const sqrt = unaryPrimitive('sqrt', (x) => Math.sqrt(x), (_x, y) => 0.5 / y);
