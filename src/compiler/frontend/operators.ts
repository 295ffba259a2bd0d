// The operators on values. Numbers (and dims, as their sizes) compute at compile time; tensors
// become elementwise graph nodes broadcasting by axis name; tuples and strings concatenate with +.
import type { BinaryOp } from './ast.ts';
import type { Elaboration } from './context.ts';
import { asBool, asNumber, finite, numberText, Poisoned, wrongKind } from '../ir/convert.ts';
import { fail } from '../ir/diagnostics.ts';
import { LIMITS } from './limits.ts';
import { addNodes } from './nodes.ts';
import { tensorNumber, tensorTensor } from '../primitives/elementwise.ts';
import { BINARY_OPERATORS, NEGATE } from '../primitives/index.ts';
import type { Span } from '../ir/source.ts';
import { bool, kindName, num, type TensorValue, type Value } from '../ir/values.ts';
import { concatStrings, makeTuple } from './value-budget.ts';

const isNumeric = (v: Value) => v.kind === 'number' || v.kind === 'dim';

function arithmetic(op: string, a: number, b: number, span: Span): number {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/':
      if (b === 0) fail('VDM035', span, 'division by zero');
      return a / b;
    case '%':
      if (b === 0) fail('VDM035', span, 'remainder of a division by zero');
      return a % b;
    default: return a ** b;
  }
}

/** Whether two values are equal; each pair of values compared counts as work. */
function equal(ctx: Elaboration, a: Value, b: Value, span: Span): boolean {
  ctx.work(1, span);
  if (a.kind === 'error' || b.kind === 'error') throw new Poisoned();
  if (isNumeric(a) || isNumeric(b)) {
    return isNumeric(a) && isNumeric(b) && (a.kind === 'dim' ? a.size : (a as { value: number }).value)
      === (b.kind === 'dim' ? b.size : (b as { value: number }).value);
  }
  const axisName = (v: Value) => (v.kind === 'axis' ? v.name : v.kind === 'string' ? v.value : null);
  if (axisName(a) !== null && axisName(b) !== null) return axisName(a) === axisName(b);
  if (a.kind === 'bool' && b.kind === 'bool') return a.value === b.value;
  if (a.kind === 'none' || b.kind === 'none') return a.kind === b.kind;
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    return a.items.length === b.items.length && a.items.every((x, i) => equal(ctx, x, b.items[i], span));
  }
  if (a.kind === 'range' && b.kind === 'range') return a.start === b.start && a.end === b.end && !a.reversed === !b.reversed;
  return false;
}

function elementwise(ctx: Elaboration, op: BinaryOp, left: Value, right: Value, span: Span): Value {
  const operator = BINARY_OPERATORS.get(op);
  if (!operator) fail('VDM017', span, `operator ${op} does not apply to tensors`);
  let result;
  if (left.kind === 'tensor' && right.kind === 'tensor') result = tensorTensor(left, right, span);
  else if (left.kind === 'tensor') result = tensorNumber(left, asNumber(right, span, `the right operand of ${op}`), 'right');
  else result = tensorNumber(right as TensorValue, asNumber(left, span, `the left operand of ${op}`), 'left');
  return addNodes(ctx, operator.name, result, span, null);
}

export function binaryOp(ctx: Elaboration, op: BinaryOp, left: Value, right: Value, span: Span): Value {
  if (left.kind === 'error' || right.kind === 'error') throw new Poisoned();
  if (op === '==' || op === '!=') {
    if (left.kind === 'tensor' || right.kind === 'tensor') fail('VDM017', span, `cannot compare tensors with ${op}`);
    // An unknown name is still a mistake when compared with a number.
    if (left.kind === 'axis' && isNumeric(right)) asNumber(left, span, 'the left operand');
    if (right.kind === 'axis' && isNumeric(left)) asNumber(right, span, 'the right operand');
    return bool(equal(ctx, left, right, span) === (op === '=='));
  }
  if (left.kind === 'tensor' || right.kind === 'tensor') return elementwise(ctx, op, left, right, span);
  if (op === '+' && left.kind === 'tuple' && right.kind === 'tuple') {
    const length = left.items.length + right.items.length;
    if (length > LIMITS.tupleItems) fail('VDM041', span, `this tuple would hold ${length} items, over the limit of ${LIMITS.tupleItems}`);
    const names = left.names || right.names
      ? [...(left.names ?? left.items.map(() => null)), ...(right.names ?? right.items.map(() => null))] : null;
    return makeTuple(ctx, [...left.items, ...right.items], names, span);
  }
  if (op === '+' && left.kind === 'string' && right.kind === 'string') return concatStrings(ctx, left.value, right.value, span);
  const a = asNumber(left, span, `the left operand of ${op}`);
  const b = asNumber(right, span, `the right operand of ${op}`);
  switch (op) {
    case '<': return bool(a < b);
    case '<=': return bool(a <= b);
    case '>': return bool(a > b);
    case '>=': return bool(a >= b);
    default: return num(finite(arithmetic(op, a, b, span), span, `${numberText(a)} ${op} ${numberText(b)}`));
  }
}

export function logicalOperand(v: Value, span: Span, op: string): boolean {
  if (v.kind === 'error') throw new Poisoned();
  return asBool(v, span, `an operand of ${op}`);
}

export function negate(ctx: Elaboration, v: Value, span: Span): Value {
  if (v.kind === 'error') throw new Poisoned();
  if (v.kind === 'tensor') {
    return addNodes(ctx, NEGATE.name, { inputs: [v], attrs: {}, outputs: [{ axes: v.axes, dtype: v.dtype }], params: [], macs: 0 }, span, null);
  }
  if (isNumeric(v)) return num(-asNumber(v, span, 'the operand of -'));
  return wrongKind(v, span, 'the operand of -', `a number or a tensor (not ${kindName(v)})`);
}
