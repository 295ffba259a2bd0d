// The `*` operator (op "mul"): elementwise, broadcasting by axis name.
import type { BinaryOperator } from './elementwise.ts';

export const mul: BinaryOperator = { name: 'mul', symbol: '*', scalar: (a, b) => a * b, partials: (a, b) => [b, a] };
