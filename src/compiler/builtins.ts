// Compile-time functions on values: size, len, min, max, floor, ceil, reversed, range.
// (sqrt, exp, abs, ... are elementwise primitives that also accept plain numbers.)
import { fail } from './diagnostics.ts';
import { asAxis, asInt, asNumber, asTensor, wrongKind } from './convert.ts';
import { sizeOf } from './primitives/axes.ts';
import type { Span } from './source.ts';
import { num, tuple, type Value } from './values.ts';

export interface BuiltinArg {
  readonly value: Value;
  readonly span: Span;
}

export interface Builtin {
  readonly name: string;
  /** Parameter names, for messages; `variadic` takes any count of at least one. */
  readonly params: readonly string[];
  readonly variadic?: boolean;
  readonly optionalFrom?: number;
  readonly run: (args: readonly BuiltinArg[], callSpan: Span) => Value;
}

function items(v: Value, span: Span, what: string): readonly Value[] {
  if (v.kind === 'tuple') return v.items;
  if (v.kind === 'range') return Array.from({ length: Math.max(0, v.end - v.start) }, (_, i) => num(v.start + i));
  return wrongKind(v, span, what, 'a tuple or a range');
}

function extreme(name: 'min' | 'max', args: readonly BuiltinArg[]): Value {
  const spread = args.length === 1 && (args[0].value.kind === 'tuple' || args[0].value.kind === 'range');
  const list = spread
    ? items(args[0].value, args[0].span, `the argument of ${name}`).map((value) => ({ value, span: args[0].span }))
    : args;
  if (list.length === 0) fail('VDM015', args[0].span, `${name} of an empty collection`);
  const numbers = list.map((a) => asNumber(a.value, a.span, `an argument of ${name}`));
  return num(name === 'min' ? Math.min(...numbers) : Math.max(...numbers));
}

const LIST: Builtin[] = [
  {
    name: 'size', params: ['x', 'axis'],
    run: ([x, axis]) => num(sizeOf(asTensor(x.value, x.span, "'x' of size"), asAxis(axis.value, axis.span, "'axis' of size"), axis.span)),
  },
  {
    name: 'len', params: ['x'],
    run: ([x]) => (x.value.kind === 'string' ? num(x.value.value.length) : num(items(x.value, x.span, "'x' of len").length)),
  },
  { name: 'min', params: ['values'], variadic: true, run: (args) => extreme('min', args) },
  { name: 'max', params: ['values'], variadic: true, run: (args) => extreme('max', args) },
  { name: 'floor', params: ['x'], run: ([x]) => num(Math.floor(asNumber(x.value, x.span, "'x' of floor"))) },
  { name: 'ceil', params: ['x'], run: ([x]) => num(Math.ceil(asNumber(x.value, x.span, "'x' of ceil"))) },
  {
    name: 'reversed', params: ['x'],
    run: ([x]) => {
      const v = x.value;
      const list = [...items(v, x.span, "'x' of reversed")].reverse();
      const names = v.kind === 'tuple' && v.names ? [...v.names].reverse() : null;
      return tuple(list, names);
    },
  },
  {
    name: 'range', params: ['start', 'end'], optionalFrom: 1,
    run: (args) => {
      const a = asInt(args[0].value, args[0].span, "'start' of range");
      if (args.length === 1) return { kind: 'range', start: 0, end: a };
      return { kind: 'range', start: a, end: asInt(args[1].value, args[1].span, "'end' of range") };
    },
  },
];

export const BUILTINS: ReadonlyMap<string, Builtin> = new Map(LIST.map((b) => [b.name, b]));

/** Value names every scope sees last. */
export const BUILTIN_VALUES = ['none'] as const;
