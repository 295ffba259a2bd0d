// The `/` operator (op "div"): elementwise, broadcasting by axis name.
import type { BinaryOperator } from './elementwise.ts';

export const div: BinaryOperator = { name: 'div', symbol: '/', scalar: (a, b) => a / b, partials: (a, b) => [1 / b, -a / (b * b)] };
