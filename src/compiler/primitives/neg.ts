// Unary minus on a tensor (op "neg").
import { unaryPrimitive } from './unary.ts';

export const neg = unaryPrimitive('neg', (x) => -x, () => -1);
