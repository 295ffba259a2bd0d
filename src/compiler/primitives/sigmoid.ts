// sigmoid(x): elementwise 1/(1 + e^-x).
import { unaryPrimitive } from './unary.ts';

export const sigmoid = unaryPrimitive('sigmoid', (x) => 1 / (1 + Math.exp(-x)));
