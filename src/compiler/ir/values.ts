// Compile-time values of the .vdm interpreter. Tensors are symbolic: a graph node plus named axes.
import type { Span } from './source.ts';

/** One named axis and its size. Axis order is for display only. */
export type Axis = readonly [name: string, size: number];
export type DType = 'f32' | 'i32';

export interface NumberValue { readonly kind: 'number'; readonly value: number }
export interface BoolValue { readonly kind: 'bool'; readonly value: boolean }
export interface StringValue { readonly kind: 'string'; readonly value: string }
export interface TupleValue {
  readonly kind: 'tuple';
  readonly items: readonly Value[];
  /** Per-item names for named tuples such as `(t: 1, h: 2)`; null for plain tuples. */
  readonly names: readonly (string | null)[] | null;
}
/** The integers start, start+1, ..., end-1 (in reverse when `reversed`), never materialised. */
export interface RangeValue { readonly kind: 'range'; readonly start: number; readonly end: number; readonly reversed?: boolean }
/** An identifier that is bound to nothing: usable where an axis is expected, else VDM010 at `span`. */
export interface AxisValue {
  readonly kind: 'axis';
  readonly name: string;
  readonly span: Span;
  /** Names visible where the identifier was written, for a did-you-mean hint (computed only on error). */
  readonly visible?: () => Iterable<string>;
}
/** A model dim: its size in arithmetic, its name where an axis is expected. */
export interface DimValue { readonly kind: 'dim'; readonly name: string; readonly size: number }
export interface TensorValue {
  readonly kind: 'tensor';
  readonly node: number;
  readonly axes: readonly Axis[];
  readonly dtype: DType;
  /** Embedding table size for label inputs (classes, plus one for the null class). */
  readonly classes?: number;
  /** A label input with null: true (its last table row is the null class). */
  readonly nullClass?: boolean;
}
export interface NoneValue { readonly kind: 'none' }
/**
 * A shared module (`cell = conv_cell as fwd`): the block or primitive `callee`, whose weights are
 * made at its first call under the name `naming` and read by every later call. `id` indexes the
 * elaboration's table of modules, where that state lives.
 */
export interface ModuleValue { readonly kind: 'module'; readonly callee: string; readonly naming: string; readonly id: number }
/** The result of an expression that already reported an error; it silences follow-up errors. */
export interface ErrorValue { readonly kind: 'error' }

export type Value = NumberValue | BoolValue | StringValue | TupleValue | RangeValue | AxisValue | DimValue
  | TensorValue | NoneValue | ModuleValue | ErrorValue;

export const ERROR: ErrorValue = Object.freeze({ kind: 'error' });
export const NONE: NoneValue = Object.freeze({ kind: 'none' });
export const TRUE: BoolValue = Object.freeze({ kind: 'bool', value: true });
export const FALSE: BoolValue = Object.freeze({ kind: 'bool', value: false });

export const num = (value: number): NumberValue => ({ kind: 'number', value });
export const str = (value: string): StringValue => ({ kind: 'string', value });
export const bool = (value: boolean): BoolValue => (value ? TRUE : FALSE);
export const tuple = (items: readonly Value[], names: readonly (string | null)[] | null = null): TupleValue =>
  ({ kind: 'tuple', items, names: names && names.some((n) => n !== null) ? names : null });

/** A word for the kind of a value, for messages ("expected a number, got a tensor"). */
export function kindName(v: Value): string {
  switch (v.kind) {
    case 'number': return 'a number';
    case 'bool': return 'a bool';
    case 'string': return 'a string';
    case 'tuple': return v.names ? 'a named tuple' : 'a tuple';
    case 'range': return 'a range';
    case 'axis': return `an axis name`;
    case 'dim': return 'a dim';
    case 'tensor': return 'a tensor';
    case 'none': return 'none';
    case 'module': return 'a shared module';
    case 'error': return 'an erroneous value';
  }
}

export function formatAxes(axes: readonly Axis[]): string {
  return `[${axes.map(([n, s]) => `${n}=${s}`).join(', ')}]`;
}

/** Short display of a value for messages. */
export function show(v: Value): string {
  switch (v.kind) {
    case 'number': return String(v.value);
    case 'bool': return String(v.value);
    case 'string': return JSON.stringify(v.value);
    case 'tuple': return `(${v.items.map((x, i) => (v.names?.[i] ? `${v.names[i]}: ` : '') + show(x)).join(', ')}${v.items.length === 1 && !v.names ? ',' : ''})`;
    case 'range': return v.reversed ? `reversed(${v.start}..${v.end})` : `${v.start}..${v.end}`;
    case 'axis': return v.name;
    case 'dim': return `${v.name}=${v.size}`;
    case 'tensor': return `tensor ${formatAxes(v.axes)}`;
    case 'none': return 'none';
    case 'module': return `${v.callee} as ${v.naming}`;
    case 'error': return '<error>';
  }
}

export function numel(axes: readonly Axis[]): number {
  let n = 1;
  for (const [, s] of axes) n *= s;
  return n;
}

export function rangeLength(r: RangeValue): number {
  return Math.max(0, r.end - r.start);
}

/** The i-th integer of a range (0 <= i < length). */
export function rangeAt(r: RangeValue, i: number): number {
  return r.reversed ? r.end - 1 - i : r.start + i;
}
