// Statements. Loops and ifs are unrolled at compile time under the budgets; every statement is an
// error boundary, and names it would have bound become error values when it fails.
import type { AssignStmt, ForStmt, RepeatStmt, Stmt, Target } from './ast.ts';
import { annotate } from './annotation.ts';
import { assignedNames, targetNames } from './assigned-names.ts';
import type { Elaboration, Frame } from './context.ts';
import { asBool, asInt, Poisoned, wrongKind } from '../ir/convert.ts';
import { DiagError, diag, fail } from '../ir/diagnostics.ts';
import { evalExpr } from './eval-expr.ts';
import { Abort, LIMITS } from './limits.ts';
import { declareDims, declareInput, declareOutput } from './model.ts';
import { NameScope } from './naming.ts';
import type { Span } from '../ir/source.ts';
import { ERROR, num, rangeAt, rangeLength, type Value } from '../ir/values.ts';

/** Runs statements; returns the value of a `return`, or null when the end is reached. */
export function execBody(ctx: Elaboration, frame: Frame, stmts: readonly Stmt[]): Value | null {
  return runAll(ctx, frame, stmts) ?? null;
}

/** Runs statements until the end (undefined) or a `return` (its value). */
function runAll(ctx: Elaboration, frame: Frame, stmts: readonly Stmt[]): Value | undefined {
  for (const s of stmts) {
    ctx.step(s.span);
    try {
      const returned = run(ctx, frame, s);
      if (returned !== undefined) return returned;
    } catch (err) {
      if (err instanceof DiagError) ctx.report(err.diagnostic);
      else if (!(err instanceof Poisoned)) throw err;
      poison(frame, assignedNames([s]));
    }
  }
  return undefined;
}

function poison(frame: Frame, names: string[]): void {
  for (const n of names) frame.vars.set(n, ERROR);
}

export type Binder = (name: string, value: Value, span: Span) => void;

/** Binds a name or destructures a tuple (VDM018 on a count mismatch). */
export function bindTarget(target: Target, value: Value, bind: Binder): void {
  if (target.type === 'name') {
    bind(target.name, value, target.span);
    return;
  }
  if (value.kind === 'error') {
    for (const n of targetNames(target)) bind(n, ERROR, target.span);
    return;
  }
  if (value.kind !== 'tuple') {
    for (const n of targetNames(target)) bind(n, ERROR, target.span);
    wrongKind(value, target.span, 'a destructured value', 'a tuple');
  }
  if (value.items.length !== target.items.length) {
    for (const n of targetNames(target)) bind(n, ERROR, target.span);
    fail('VDM018', target.span, `cannot unpack ${value.items.length} value${value.items.length === 1 ? '' : 's'} into ${target.items.length} names`);
  }
  target.items.forEach((t, i) => bindTarget(t, value.items[i], bind));
}

function assign(ctx: Elaboration, frame: Frame, s: AssignStmt): void {
  const value = evalExpr(ctx, frame, s.value);
  if (s.annotation) annotate(ctx, frame, s.annotation, value, s.value.span);
  bindTarget(s.target, value, (name, v) => frame.vars.set(name, v));
}

function run(ctx: Elaboration, frame: Frame, s: Stmt): Value | undefined {
  switch (s.type) {
    case 'assign': assign(ctx, frame, s); return undefined;
    case 'let': for (const b of s.bindings) assign(ctx, frame, b); return undefined;
    case 'return':
      if (frame.block === null) fail('VDM019', s.span, "'return' is only allowed in a block");
      return evalExpr(ctx, frame, s.value);
    case 'ifStmt': {
      const cond = evalExpr(ctx, frame, s.cond);
      if (cond.kind === 'error') {
        poison(frame, assignedNames([s]));
        return undefined;
      }
      const taken = asBool(cond, s.cond.span, 'an if condition') ? s.then : s.else;
      return taken ? runAll(ctx, frame, taken) : undefined;
    }
    case 'for': return loop(ctx, frame, s);
    case 'repeat': return loop(ctx, frame, s);
    case 'assert': {
      const cond = evalExpr(ctx, frame, s.cond);
      if (cond.kind === 'error') return undefined;
      if (!asBool(cond, s.cond.span, 'an assert condition')) {
        // An empty or blank message says nothing: the condition's source text stands in for it.
        const text = s.cond.span.source.text.slice(s.cond.span.start, s.cond.span.end).replace(/\s+/g, ' ');
        ctx.report(diag('VDM036', s.span, s.message?.trim() ? s.message : `assertion failed: ${text}`));
      }
      return undefined;
    }
    case 'dims':
    case 'input':
    case 'output':
      if (!frame.model) fail('VDM019', s.span, `'${s.type}' is only allowed in a model`);
      if (s.type === 'dims') declareDims(ctx, frame, s);
      else if (s.type === 'input') declareInput(ctx, frame, s);
      else declareOutput(ctx, frame, s);
      return undefined;
  }
}

/** The values a loop runs over, checked against the unroll limit (VDM040). */
function iterationValues(ctx: Elaboration, frame: Frame, s: ForStmt | RepeatStmt): Value[] | null {
  const source = s.type === 'for' ? evalExpr(ctx, frame, s.iterable) : evalExpr(ctx, frame, s.count);
  const span = s.type === 'for' ? s.iterable.span : s.count.span;
  if (source.kind === 'error') return null;
  let count: number;
  if (s.type === 'repeat') {
    count = asInt(source, span, 'a repeat count');
    if (count < 0) fail('VDM035', span, `a repeat count must not be negative, got ${count}`);
  } else if (source.kind === 'range') count = rangeLength(source);
  else if (source.kind === 'tuple') count = source.items.length;
  else return wrongKind(source, span, 'a for loop', 'a range or a tuple to run over');
  if (count > LIMITS.loopIterations) {
    fail('VDM040', span, `this loop would unroll ${count} iterations, more than the limit of ${LIMITS.loopIterations}`);
  }
  if (s.type === 'repeat') return Array.from({ length: count }, (_, i) => num(i));
  if (source.kind === 'range') return Array.from({ length: count }, (_, i) => num(rangeAt(source, i)));
  return [...(source as { items: readonly Value[] }).items];
}

/**
 * After two iterations, a loop whose remaining iterations would blow a budget (counting the
 * cheaper of the two iterations) stops at once instead of after seconds of work.
 */
function projectBudgets(ctx: Elaboration, s: ForStmt | RepeatStmt, per: { nodes: number; steps: number }, remaining: number): void {
  const nodes = (ctx.graph?.size ?? 0) + per.nodes * remaining;
  if (nodes > LIMITS.nodes) {
    throw new Abort(diag('VDM043', s.span, `this loop would grow the graph to about ${nodes} nodes, past the limit of ${LIMITS.nodes}`,
      'a loop or recursion is probably far larger than intended'));
  }
  const steps = ctx.steps + per.steps * remaining;
  if (steps > LIMITS.steps) {
    throw new Abort(diag('VDM040', s.span, `this loop would take about ${steps} elaboration steps, past the limit of ${LIMITS.steps}`,
      'a loop or recursion is probably far larger than intended'));
  }
}

function loop(ctx: Elaboration, frame: Frame, s: ForStmt | RepeatStmt): Value | undefined {
  let values: Value[] | null;
  try {
    values = iterationValues(ctx, frame, s);
  } catch (err) {
    poison(frame, assignedNames([s]));
    throw err;
  }
  if (values === null) {
    poison(frame, assignedNames([s]));
    return undefined;
  }
  const outer = ctx.naming;
  const entry = ctx.naming.add('loop', s.naming?.name ?? 'layers', s.naming !== null);
  const perIteration = { nodes: Infinity, steps: Infinity };
  try {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      const before = { nodes: ctx.graph?.size ?? 0, steps: ctx.steps };
      ctx.step(s.span);
      const iteration = new NameScope();
      entry.iterations!.push(iteration);
      ctx.naming = iteration;
      if (s.type === 'for') frame.vars.set(s.variable.name, v);
      const returned = runAll(ctx, frame, s.body);
      if (returned !== undefined) return returned;
      if (i < 2) {
        perIteration.nodes = Math.min(perIteration.nodes, (ctx.graph?.size ?? 0) - before.nodes);
        perIteration.steps = Math.min(perIteration.steps, ctx.steps - before.steps);
        if (i === 1) projectBudgets(ctx, s, perIteration, values.length - 2);
      }
    }
  } finally {
    ctx.naming = outer;
  }
  return undefined;
}
