// Compile-time functions on values: size, len, min, max, floor, ceil, reversed, range.
// (sqrt, exp, abs, ... are elementwise primitives that also accept plain numbers.)
// Ranges stay symbolic: len, min, max and reversed of a billion-element range cost nothing.
import { fail } from '../ir/diagnostics.ts';
import { asAxis, asInt, asNumber, asTensor, wrongKind } from '../ir/convert.ts';
import { sizeOf } from '../primitives/axes.ts';
import type { Span } from '../ir/source.ts';
import { num, rangeLength, tuple, type Value } from '../ir/values.ts';

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

function lengthOf(v: Value, span: Span, what: string): number {
  if (v.kind === 'tuple') return v.items.length;
  if (v.kind === 'range') return rangeLength(v);
  if (v.kind === 'string') return v.value.length;
  return wrongKind(v, span, what, 'a tuple, a range or a string');
}

function extreme(name: 'min' | 'max', args: readonly BuiltinArg[]): Value {
  const pick = name === 'min' ? Math.min : Math.max;
  if (args.length === 1 && args[0].value.kind === 'range') {
    const r = args[0].value;
    if (rangeLength(r) === 0) fail('VDM015', args[0].span, `${name} of an empty range`);
    return num(name === 'min' ? r.start : r.end - 1);
  }
  const list = args.length === 1 && args[0].value.kind === 'tuple'
    ? args[0].value.items.map((value) => ({ value, span: args[0].span }))
    : args;
  if (list.length === 0) fail('VDM015', args[0].span, `${name} of an empty tuple`);
  return num(pick(...list.map((a) => asNumber(a.value, a.span, `an argument of ${name}`))));
}

const LIST: Builtin[] = [
  {
    name: 'size', params: ['x', 'axis'],
    run: ([x, axis]) => num(sizeOf(asTensor(x.value, x.span, "'x' of size"), asAxis(axis.value, axis.span, "'axis' of size"), axis.span)),
  },
  { name: 'len', params: ['x'], run: ([x]) => num(lengthOf(x.value, x.span, "'x' of len")) },
  { name: 'min', params: ['values'], variadic: true, run: (args) => extreme('min', args) },
  { name: 'max', params: ['values'], variadic: true, run: (args) => extreme('max', args) },
  { name: 'floor', params: ['x'], run: ([x]) => num(Math.floor(asNumber(x.value, x.span, "'x' of floor"))) },
  { name: 'ceil', params: ['x'], run: ([x]) => num(Math.ceil(asNumber(x.value, x.span, "'x' of ceil"))) },
  {
    name: 'reversed', params: ['x'],
    run: ([x]) => {
      const v = x.value;
      if (v.kind === 'range') return { ...v, reversed: !v.reversed };
      if (v.kind !== 'tuple') return wrongKind(v, x.span, "'x' of reversed", 'a tuple or a range');
      return tuple([...v.items].reverse(), v.names ? [...v.names].reverse() : null);
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

