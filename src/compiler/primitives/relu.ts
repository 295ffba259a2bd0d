// relu(x): elementwise max(0, x).
import { unaryPrimitive } from './unary.ts';

export const relu = unaryPrimitive('relu', (x) => Math.max(0, x), (x) => (x > 0 ? 1 : 0));
