// Value -> plain JS conversions used wherever the language expects a particular kind of value.
// An unbound identifier (axis-name value) where something else is expected is VDM010 at the place it
// was written; an error value gives up silently, since its error was reported already.
import { fail } from './diagnostics.ts';
import type { Span } from './source.ts';
import { didYouMean } from './suggest.ts';
import { kindName, show, type AxisValue, type TensorValue, type Value } from './values.ts';

/** Thrown when an input is an error value: the caller's result becomes an error value, unreported. */
export class Poisoned extends Error {
  constructor() {
    // Control flow, caught and never shown: no stack trace to capture (see DiagError).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super('poisoned by an earlier error');
    Error.stackTraceLimit = limit;
  }
}

export const MAX_SIZE = 2 ** 31;

export function unknownName(v: AxisValue): never {
  fail('VDM010', v.span, `unknown name '${v.name}'`, v.visible ? didYouMean(v.name, v.visible()) : undefined);
}

/** Reports that `v` is not of the expected kind (or is an unknown name, or an earlier error). */
export function wrongKind(v: Value, span: Span, what: string, expected: string): never {
  if (v.kind === 'error') throw new Poisoned();
  if (v.kind === 'axis') unknownName(v);
  fail('VDM017', span, `${what} must be ${expected}, got ${kindName(v)}${v.kind === 'tensor' ? '' : ` (${show(v)})`}`);
}

/**
 * A compile-time number must stay a real, finite number: an overflow (`2 ** 10000`) or `sqrt(-1)`
 * would otherwise flow on as Infinity or NaN into sizes, scales and the graph (VDM035 at `span`).
 */
export function finite(n: number, span: Span, expression: string): number {
  if (Number.isNaN(n)) fail('VDM035', span, `${expression} is not a real number`);
  if (!Number.isFinite(n)) fail('VDM035', span, `${expression} is too large: it overflows to infinity`, 'compile-time numbers are 64-bit floats, at most about 1.8e308');
  return n;
}

/** A number as written in an expression shown in a message (negative ones in parentheses). */
export function numberText(n: number): string {
  return n < 0 ? `(${n})` : String(n);
}

export function asNumber(v: Value, span: Span, what: string): number {
  if (v.kind === 'number') return v.value;
  if (v.kind === 'dim') return v.size;
  return wrongKind(v, span, what, 'a number');
}

/** A number above 0, such as a norm's eps (0 or less would divide by zero or go negative under a root). */
export function asPositive(v: Value, span: Span, what: string): number {
  const n = asNumber(v, span, what);
  if (!(n > 0)) fail('VDM035', span, `${what} must be a positive number, got ${n}`);
  return n;
}

export function asInt(v: Value, span: Span, what: string): number {
  const n = asNumber(v, span, what);
  if (!Number.isInteger(n)) fail('VDM017', span, `${what} must be an integer, got ${n}`);
  return n;
}

/** A positive integer size (VDM035), at most 2^31 (VDM041). */
export function asSize(v: Value, span: Span, what: string): number {
  const n = asNumber(v, span, what);
  checkSize(n, span, what);
  return n;
}

export function checkSize(n: number, span: Span, what: string): void {
  if (!Number.isInteger(n) || n <= 0) fail('VDM035', span, `${what} must be a positive integer, got ${n}`);
  if (n > MAX_SIZE) fail('VDM041', span, `${what} is ${n}, over the limit of 2^31`);
}

export function asBool(v: Value, span: Span, what: string): boolean {
  if (v.kind === 'bool') return v.value;
  return wrongKind(v, span, what, 'true or false');
}

export function asString(v: Value, span: Span, what: string, choices?: readonly string[]): string {
  if (v.kind !== 'string') {
    const expected = choices ? `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}` : 'a string';
    return wrongKind(v, span, what, expected);
  }
  if (choices && !choices.includes(v.value)) {
    fail('VDM017', span, `${what} must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${JSON.stringify(v.value)}`);
  }
  return v.value;
}

/** An axis: an unbound identifier, a dim, or a string. */
export function asAxis(v: Value, span: Span, what: string): string {
  if (v.kind === 'axis') return v.name;
  if (v.kind === 'dim') return v.name;
  if (v.kind === 'string') return v.value;
  return wrongKind(v, span, what, 'an axis name');
}

/** One axis or a tuple of axes, without repeats (VDM022). */
export function asAxes(v: Value, span: Span, what: string): string[] {
  if (v.kind !== 'tuple') return [asAxis(v, span, what)];
  const names = v.items.map((item) => asAxis(item, span, what));
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) fail('VDM022', span, `axis '${n}' appears twice in ${what}`);
    seen.add(n);
  }
  return names;
}

export function asTensor(v: Value, span: Span, what: string): TensorValue {
  if (v.kind === 'tensor') return v;
  return wrongKind(v, span, what, 'a tensor');
}

/** A named tuple of numbers such as `(t: 1, h: 2)`, as [name, number] pairs in written order. */
export function asNamedNumbers(v: Value, span: Span, what: string): [string, number][] {
  if (v.kind !== 'tuple' || (!v.names && v.items.length > 0)) return wrongKind(v, span, what, 'a named tuple like (h: 2, w: 2)');
  const out: [string, number][] = [];
  v.items.forEach((item, i) => {
    const name = v.names?.[i];
    if (!name) fail('VDM017', span, `${what} must name every entry, like (h: 2, w: 2)`);
    if (out.some(([n]) => n === name)) fail('VDM022', span, `axis '${name}' appears twice in ${what}`);
    out.push([name, asNumber(item, span, `${what}.${name}`)]);
  });
  return out;
}

/** A per-axis setting: one integer for every axis concerned, or a named tuple of integers. */
export type PerAxis = number | [string, number][];

export function asPerAxis(v: Value, span: Span, what: string): PerAxis {
  if (v.kind === 'tuple') {
    const pairs = asNamedNumbers(v, span, what);
    for (const [n, x] of pairs) if (!Number.isInteger(x)) fail('VDM017', span, `${what}.${n} must be an integer, got ${x}`);
    return pairs;
  }
  if (v.kind === 'number' || v.kind === 'dim') return asInt(v, span, what);
  return wrongKind(v, span, what, 'an integer or a named tuple like (h: 2, w: 2)');
}
