// Expression evaluation. Each expression is an error boundary: a problem is reported once and the
// expression yields an error value, which quietly poisons whatever uses it.
import type { BinaryExpr, Expr, IndexExpr } from './ast.ts';
import { bindModule, evalCall } from './calls.ts';
import type { Elaboration, Frame } from './context.ts';
import { asInt, finite, Poisoned, wrongKind } from '../ir/convert.ts';
import { DiagError, fail } from '../ir/diagnostics.ts';
import { binaryOp, logicalOperand, negate } from './operators.ts';
import type { Span } from '../ir/source.ts';
import { ERROR, NONE, bool, num, rangeAt, rangeLength, str, tuple, type RangeValue, type TupleValue, type Value } from '../ir/values.ts';
import { makeTuple } from './value-budget.ts';

export function evalExpr(ctx: Elaboration, frame: Frame, e: Expr): Value {
  try {
    return evaluate(ctx, frame, e);
  } catch (err) {
    if (err instanceof DiagError) {
      ctx.report(err.diagnostic);
      return ERROR;
    }
    if (err instanceof Poisoned) return ERROR;
    throw err;
  }
}

/** Variables, then the file's lets (own and imported), then `none`; anything else is an axis name. */
export function lookup(frame: Frame, name: string, span: Span): Value {
  const local = frame.vars.get(name);
  if (local !== undefined) return local;
  const global = frame.scope.lets.get(name);
  if (global !== undefined) return global.value;
  if (name === 'none') return NONE;
  return {
    kind: 'axis', name, span,
    visible: () => [...frame.vars.keys(), ...frame.scope.visibleNames()],
  };
}

function evaluate(ctx: Elaboration, frame: Frame, e: Expr): Value {
  switch (e.type) {
    case 'number': return num(finite(e.value, e.span, `the number ${e.span.source.text.slice(e.span.start, e.span.end)}`));
    case 'string': return str(e.value);
    case 'bool': return bool(e.value);
    case 'ident': return lookup(frame, e.name, e.span);
    case 'tuple': {
      const names = e.items.map((i) => i.name?.name ?? null);
      const seen = new Set<string>();
      for (const item of e.items) {
        if (!item.name) continue;
        if (seen.has(item.name.name)) fail('VDM016', item.name.span, `'${item.name.name}' appears twice in the tuple`);
        seen.add(item.name.name);
      }
      const items = e.items.map((i) => evalExpr(ctx, frame, i.value));
      if (items.some((v) => v.kind === 'error')) throw new Poisoned();
      return makeTuple(ctx, items, names, e.span);
    }
    case 'call': return evalCall(ctx, frame, e);
    case 'module': return bindModule(ctx, frame, e);
    case 'index': return index(ctx, frame, e);
    case 'unary': {
      const v = evalExpr(ctx, frame, e.operand);
      return e.op === '-' ? negate(ctx, v, e.span) : bool(!logicalOperand(v, e.operand.span, 'not'));
    }
    case 'binary': {
      if (e.op === 'and' || e.op === 'or') return logicalChain(ctx, frame, e);
      return arithmeticChain(ctx, frame, e);
    }
    case 'range': {
      const start = evalExpr(ctx, frame, e.start);
      const end = evalExpr(ctx, frame, e.end);
      return { kind: 'range', start: asInt(start, e.start.span, 'a range start'), end: asInt(end, e.end.span, 'a range end') };
    }
    case 'if': {
      const cond = logicalOperand(evalExpr(ctx, frame, e.cond), e.cond.span, 'if');
      return evalExpr(ctx, frame, cond ? e.then : e.else);
    }
  }
}

/**
 * Evaluates a binary expression whose left operand may nest thousands deep (`1 + 1 + ... + 1`) in a
 * loop, keeping each operation its own error boundary.
 */
function arithmeticChain(ctx: Elaboration, frame: Frame, top: BinaryExpr): Value {
  const spine: BinaryExpr[] = [top];
  let e = top.left;
  while (e.type === 'binary' && e.op !== 'and' && e.op !== 'or') {
    spine.push(e);
    e = e.left;
  }
  let acc = evalExpr(ctx, frame, e);
  for (let i = spine.length - 1; i >= 0; i--) {
    const node = spine[i];
    const right = evalExpr(ctx, frame, node.right);
    try {
      acc = binaryOp(ctx, node.op, acc, right, node.span);
    } catch (err) {
      if (err instanceof DiagError) ctx.report(err.diagnostic);
      else if (!(err instanceof Poisoned)) throw err;
      acc = ERROR;
    }
  }
  return acc;
}

/** `a and b and c ...` (or `or`), short-circuiting, with the left-nested chain walked in a loop. */
function logicalChain(ctx: Elaboration, frame: Frame, top: BinaryExpr): Value {
  const spine: BinaryExpr[] = [top];
  let e = top.left;
  while (e.type === 'binary' && e.op === top.op) {
    spine.push(e);
    e = e.left;
  }
  let acc = logicalOperand(evalExpr(ctx, frame, e), e.span, top.op);
  for (let i = spine.length - 1; i >= 0; i--) {
    if (top.op === 'and' ? !acc : acc) return bool(acc);
    acc = logicalOperand(evalExpr(ctx, frame, spine[i].right), spine[i].right.span, top.op);
  }
  return bool(acc);
}

/** `xs[i]` on tuples and ranges (negative i counts from the end); `xs[a..b]` slices; `t[h]` on named tuples. */
function index(ctx: Elaboration, frame: Frame, e: IndexExpr): Value {
  const target = lookup(frame, e.target.name, e.target.span);
  const i = evalExpr(ctx, frame, e.index);
  if (target.kind === 'error' || i.kind === 'error') throw new Poisoned();
  // A named tuple is indexed by axis: an unbound name, a dim (by its name), or a string.
  if (target.kind === 'tuple' && target.names && (i.kind === 'axis' || i.kind === 'dim' || i.kind === 'string')) {
    const key = i.kind === 'string' ? i.value : i.name;
    const at = target.names.indexOf(key);
    if (at < 0) fail('VDM017', e.index.span, `the tuple has no entry named '${key}'`);
    return target.items[at];
  }
  let length: number;
  if (target.kind === 'tuple') length = target.items.length;
  else if (target.kind === 'range') length = rangeLength(target);
  else return wrongKind(target, e.target.span, `'${e.target.name}'`, 'a tuple or a range to index');
  if (i.kind === 'range') return slice(target, length, i, e.index.span);
  const k = asInt(i, e.index.span, 'an index');
  const at = k < 0 ? length + k : k;
  if (at < 0 || at >= length) fail('VDM017', e.index.span, `index ${k} is out of range for ${length} item${length === 1 ? '' : 's'}`);
  return target.kind === 'tuple' ? target.items[at] : num(rangeAt(target, at));
}

/**
 * `xs[a..b]`: the items at a, a+1, ..., b-1 (half-open, like a range), a negative end counting from
 * the end as an index does, so `skips[0..-1]` drops the last item. Names of a named tuple stay with
 * their items; a slice of a range is a range. Ends outside the tuple are an error, not clamped.
 */
function slice(target: TupleValue | RangeValue, length: number, r: RangeValue, span: Span): Value {
  if (r.reversed) fail('VDM017', span, 'a reversed range cannot slice', 'slice with a..b, then reverse the result with reversed(...)');
  const from = r.start < 0 ? length + r.start : r.start;
  const to = r.end < 0 ? length + r.end : r.end;
  if (from < 0 || to > length || from > to) {
    fail('VDM017', span, `slice ${r.start}..${r.end} is out of range for ${length} item${length === 1 ? '' : 's'}`,
      `a slice a..b needs 0 <= a <= b <= ${length} (a negative end counts from the end)`);
  }
  if (target.kind === 'range') {
    return target.reversed
      ? { kind: 'range', start: target.end - to, end: target.end - from, reversed: true }
      : { kind: 'range', start: target.start + from, end: target.start + to };
  }
  return tuple(target.items.slice(from, to), target.names ? target.names.slice(from, to) : null);
}
