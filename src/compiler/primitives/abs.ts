// abs(x): elementwise absolute value.
import { unaryPrimitive } from './unary.ts';

export const abs = unaryPrimitive('abs', (x) => Math.abs(x), (x) => Math.sign(x));
