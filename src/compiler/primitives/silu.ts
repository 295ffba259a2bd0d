// silu(x): elementwise x·sigmoid(x).
import { unaryPrimitive } from './unary.ts';

export const silu = unaryPrimitive('silu', (x) => x / (1 + Math.exp(-x)), (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 + x * (1 - s)); });
