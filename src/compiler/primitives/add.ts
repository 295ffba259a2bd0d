// The `+` operator (op "add"): elementwise, broadcasting by axis name.
import type { BinaryOperator } from './elementwise.ts';

export const add: BinaryOperator = { name: 'add', symbol: '+', scalar: (a, b) => a + b, partials: () => [1, 1] };
