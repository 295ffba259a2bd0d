// sigmoid(x): elementwise 1/(1 + e^-x).
import { unaryPrimitive } from './unary.ts';

export const sigmoid = unaryPrimitive('sigmoid', (x) => 1 / (1 + Math.exp(-x)), (_x, y) => y * (1 - y));
