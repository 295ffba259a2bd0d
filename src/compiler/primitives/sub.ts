// The `-` operator (op "sub"): elementwise, broadcasting by axis name.
import type { BinaryOperator } from './elementwise.ts';

export const sub: BinaryOperator = { name: 'sub', symbol: '-', scalar: (a, b) => a - b, partials: () => [1, -1] };
