// Every compile-time value the elaborator builds counts against budgets (limits.ts): its size
// (tuple items, nested ones counted as often as they occur, plus string characters: VDM041), how
// deep tuples nest (VDM041), and the work of building, copying and comparing values over the
// whole elaboration (VDM040). A value doubled sixty times therefore ends in a located diagnostic
// after a few doublings, and any message that prints a value prints a bounded one.
import type { Elaboration } from './context.ts';
import { fail } from '../ir/diagnostics.ts';
import { LIMITS } from './limits.ts';
import type { Span } from '../ir/source.ts';
import { str, tuple, type TupleValue, type Value } from '../ir/values.ts';

interface Measure { readonly size: number; readonly depth: number }

/** Tuples are immutable, so their measure is computed once (sharing in a DAG costs nothing). */
const measured = new WeakMap<TupleValue, Measure>();
const LEAF: Measure = { size: 0, depth: 0 };

export function measure(v: Value): Measure {
  if (v.kind === 'string') return { size: v.value.length, depth: 0 };
  if (v.kind !== 'tuple') return LEAF;
  const known = measured.get(v);
  if (known) return known;
  // A tuple made outside this module (a primitive's outputs): its items are leaves or measured.
  let size = v.items.length;
  let depth = 0;
  for (const item of v.items) {
    const m = measure(item);
    size += m.size;
    depth = Math.max(depth, m.depth);
  }
  const m = { size, depth: depth + 1 };
  measured.set(v, m);
  return m;
}

/** The size of a value, for budgets and messages. */
export const sizeOf = (v: Value): number => measure(v).size;

/** A new tuple, checked against the value budgets at `span`. */
export function makeTuple(ctx: Elaboration, items: readonly Value[], names: readonly (string | null)[] | null, span: Span): TupleValue {
  ctx.work(items.length, span);
  let size = items.length;
  let depth = 0;
  for (const item of items) {
    const m = measure(item);
    size += m.size;
    depth = Math.max(depth, m.depth);
  }
  if (size > LIMITS.valueSize) {
    fail('VDM041', span, `this tuple would hold ${size} items and characters (nested ones counted), over the limit of ${LIMITS.valueSize}`,
      'a tuple that doubles in a loop grows exponentially; build it from the values it needs');
  }
  if (depth + 1 > LIMITS.valueDepth) fail('VDM041', span, `tuples would nest deeper than ${LIMITS.valueDepth} levels`);
  const t = tuple(items, names);
  measured.set(t, { size, depth: depth + 1 });
  return t;
}

/** `a + b` on strings, checked against the value budgets before the characters are copied. */
export function concatStrings(ctx: Elaboration, a: string, b: string, span: Span): Value {
  const length = a.length + b.length;
  if (length > LIMITS.valueSize) {
    fail('VDM041', span, `this string would have ${length} characters, over the limit of ${LIMITS.valueSize}`,
      'a string that doubles in a loop grows exponentially');
  }
  ctx.work(length, span);
  return str(a + b);
}
