// exp(x): elementwise e^x.
import { unaryPrimitive } from './unary.ts';

export const exp = unaryPrimitive('exp', (x) => Math.exp(x), (_x, y) => y);
