// The backward rules of elementwise nodes as expressions for the elementwise kernel: per input,
// d loss / d input = g * (partial derivative). Operands are named as backward.ts binds them: in0 is
// the gradient g, then the node's inputs, then its value y. A function's derivative comes from its
// record (kernels/functions.ts); the operators' partials are here.
import type { GraphNode } from '../compiler/ir/graph.ts';
import { isFunctionName } from './kernels/functions.ts';
import { constant, derivative, div, input, mul, type Expr } from './kernels/expr.ts';

/** ∂(a op b)/∂a and ∂(a op b)/∂b. */
const PARTIALS: Readonly<Record<string, (a: Expr, b: Expr) => [Expr, Expr]>> = {
  add: () => [constant(1), constant(1)],
  sub: () => [constant(1), constant(-1)],
  mul: (a, b) => [b, a],
  div: (a, b) => [div(1, b), div(mul(-1, a), mul(b, b))],
};

/** Per input of an elementwise node: its gradient expression over in0 = g, in1.. = inputs, then y. */
export function gradientExprs(node: GraphNode): Expr[] {
  const g = input('in0');
  const partials = PARTIALS[node.op];
  if (partials && node.inputs.length === 2) {
    const [da, db] = partials(input('in1'), input('in2'));
    return [mul(g, da), mul(g, db)];
  }
  if (partials) {
    const k = constant(Number(node.attrs.scalar));
    const x = input('in1');
    const [da, db] = node.attrs.side === 'left' ? partials(k, x) : partials(x, k);
    return [mul(g, node.attrs.side === 'left' ? db : da)];
  }
  if (!isFunctionName(node.op)) throw new Error(`no backward rule for elementwise '${node.op}'`);
  return [mul(g, derivative(node.op, input('in1'), input('in2')))];
}
