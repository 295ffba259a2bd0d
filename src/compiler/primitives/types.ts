// What a primitive is: its signature (argument names, kinds, defaults) and its shape rule, which
// returns output axes, parameter shapes (dotted leaf names) and MACs. Later stages add more to each
// primitive module (reference maths, lowering, backward) without changing this contract.
import { fail } from '../ir/diagnostics.ts';
import {
  asAxes, asAxis, asBool, asInt, asNamedNumbers, asNumber, asPerAxis, asPositive, asSize, asString, asTensor, Poisoned,
  type PerAxis,
} from '../ir/convert.ts';
import { requireAxes, sizeOf } from './axes.ts';
import type { LowerCall, LowerVjpCall } from './lowering.ts';
import type { AxisPair } from '../ir/graph.ts';
import type { Json } from '../ir/json.ts';
import type { NamedTensor } from '../ir/named-tensor.ts';
import type { Span } from '../ir/source.ts';
import { NONE, num, str, bool, type Axis, type DType, type TensorValue, type Value } from '../ir/values.ts';

export type ArgKind = 'tensor' | 'tensors' | 'int' | 'size' | 'number' | 'bool' | 'string' | 'axis' | 'axes'
  | 'per-axis' | 'named-sizes' | 'tensor-or-none' | 'axes-or-none' | 'per-axis-or-none' | 'padding';

/** A default: a literal, `none` (null), an axis name, or a rule computed by the primitive (documented text). */
export type DefaultSpec = number | boolean | string | null | { readonly axis: string } | { readonly computed: string };

export interface ArgSpec {
  readonly name: string;
  readonly kind: ArgKind;
  /** Left out: the argument is required. */
  readonly default?: DefaultSpec;
  /** Takes all remaining positional arguments (concat). */
  readonly variadic?: boolean;
  readonly choices?: readonly string[];
}

export interface ParamShape {
  /** Dotted leaf name under the call's path, e.g. "weight" or "qkv.bias". */
  readonly leaf: string;
  readonly shape: readonly number[];
  readonly init: string;
}

export interface OutputSpec {
  readonly axes: readonly Axis[];
  readonly dtype: DType;
  readonly classes?: number;
  /** Extra attributes of this output's node (e.g. which part of a split). */
  readonly attrs?: Readonly<Record<string, Json>>;
}

export interface PrimitiveResult {
  readonly inputs: readonly TensorValue[];
  readonly attrs: Readonly<Record<string, Json>>;
  /** One output, or several when the primitive returns a tuple (split). */
  readonly outputs: readonly OutputSpec[];
  readonly tuple?: boolean;
  readonly params: readonly ParamShape[];
  readonly macs: number;
}

/** What a primitive's float64 reference gets: one graph node's inputs, parameters and attributes. */
export interface ReferenceCall {
  readonly inputs: readonly NamedTensor[];
  /** Parameters by leaf name, row-major in the shape the shape rule gave them. */
  readonly params: ReadonlyMap<string, Float64Array>;
  readonly attrs: Readonly<Record<string, Json>>;
  /** The node's output axes, as the shape rule gave them. */
  readonly axes: readonly AxisPair[];
}

export interface VjpCall extends ReferenceCall {
  /** the node's value, as the reference computed it (over `axes`, in that order) */
  readonly value: NamedTensor;
  /** d loss / d value, over `axes` in that order */
  readonly grad: NamedTensor;
}

export interface VjpResult {
  /** per tensor input: d loss / d input, over that input's axes in any order; null: no gradient */
  readonly inputs: readonly (NamedTensor | null)[];
  /** per parameter leaf: d loss / d parameter, row-major in the parameter's shape */
  readonly params?: ReadonlyMap<string, Float64Array>;
}

export interface Primitive {
  readonly name: string;
  readonly args: readonly ArgSpec[];
  readonly apply: (args: BoundArgs) => PrimitiveResult;
  /** Elementwise functions also work on plain numbers at compile time (and are their own reference). */
  readonly scalar?: (x: number) => number;
  /** The float64 reference: the node's value, over its output axes in any order. */
  readonly reference?: (call: ReferenceCall) => NamedTensor;
  /** The derivative of `scalar` at x, given y = scalar(x): the backward rule of an elementwise function. */
  readonly derivative?: (x: number, y: number) => number;
  /**
   * The float64 backward rule (vector-Jacobian product): given the node's inputs, parameters, value
   * and the gradient of a loss with respect to that value, the gradients with respect to each
   * tensor input (null where the input is not differentiable, e.g. integer ids) and each parameter.
   */
  readonly vjp?: (call: VjpCall) => VjpResult;
  /** Emits the kernels that compute the node's value on the GPU (src/codegen/lower.ts). */
  readonly lower?: (call: LowerCall) => void;
  /** Emits the kernels of the backward rule on the GPU (src/codegen/backward.ts); `vjp` is its oracle. */
  readonly lowerVjp?: (call: LowerVjpCall) => void;
  /** Fan-in and fan-out of a parameter, for 'default' and 'xavier_uniform' initialisation. */
  readonly fans?: (leaf: string, shape: readonly number[]) => readonly [number, number];
}

export interface BoundArg {
  readonly value: Value;
  readonly span: Span;
}

/** Arguments after binding, with typed accessors that report problems at the argument's span. */
export class BoundArgs {
  constructor(
    readonly callee: string,
    readonly callSpan: Span,
    private readonly specs: readonly ArgSpec[],
    private readonly given: ReadonlyMap<string, BoundArg>,
    /** Extra positional values for a variadic argument. */
    private readonly rest: readonly BoundArg[] = [],
    /** The model's dims by name, for hints that suggest a `--dim` value. */
    readonly dims: ReadonlyMap<string, number> = new Map(),
  ) {}

  has(name: string): boolean {
    return this.given.has(name);
  }

  span(name: string): Span {
    return this.given.get(name)?.span ?? this.callSpan;
  }

  what(name: string): string {
    return `'${name}' of ${this.callee}`;
  }

  value(name: string): Value {
    const g = this.given.get(name);
    if (g) return g.value;
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new Error(`${this.callee} has no argument '${name}'`);
    const d = spec.default;
    if (d === undefined || (typeof d === 'object' && d !== null && 'computed' in d)) {
      throw new Error(`${this.callee}: no value and no literal default for '${name}'`);
    }
    if (d === null) return NONE;
    if (typeof d === 'number') return num(d);
    if (typeof d === 'boolean') return bool(d);
    if (typeof d === 'string') return str(d);
    return { kind: 'axis', name: d.axis, span: this.callSpan };
  }

  /** All values of a variadic argument (a single tuple argument is spread). */
  values(name: string): BoundArg[] {
    const first = this.given.get(name);
    const all = first ? [first, ...this.rest] : [...this.rest];
    if (all.length === 1 && all[0].value.kind === 'tuple') {
      return all[0].value.items.map((value) => ({ value, span: all[0].span }));
    }
    return all;
  }

  isNone(name: string): boolean {
    return this.value(name).kind === 'none';
  }

  tensor(name: string): TensorValue { return asTensor(this.value(name), this.span(name), this.what(name)); }
  int(name: string): number { return asInt(this.value(name), this.span(name), this.what(name)); }
  size(name: string): number { return asSize(this.value(name), this.span(name), this.what(name)); }
  number(name: string): number { return asNumber(this.value(name), this.span(name), this.what(name)); }
  positive(name: string): number { return asPositive(this.value(name), this.span(name), this.what(name)); }
  bool(name: string): boolean { return asBool(this.value(name), this.span(name), this.what(name)); }
  axis(name: string): string { return asAxis(this.value(name), this.span(name), this.what(name)); }
  axes(name: string): string[] { return asAxes(this.value(name), this.span(name), this.what(name)); }
  perAxis(name: string): PerAxis { return asPerAxis(this.value(name), this.span(name), this.what(name)); }
  namedNumbers(name: string): [string, number][] { return asNamedNumbers(this.value(name), this.span(name), this.what(name)); }

  string(name: string): string {
    const spec = this.specs.find((s) => s.name === name);
    return asString(this.value(name), this.span(name), this.what(name), spec?.choices);
  }

  /** The tensor argument `tensor` and the axis argument `axis`, one of its axes (VDM020), with that axis' size. */
  tensorAxis(tensor: string, axis: string): { x: TensorValue; axis: string; size: number } {
    const x = this.tensor(tensor);
    const name = this.axis(axis);
    return { x, axis: name, size: sizeOf(x, name, this.span(axis)) };
  }

  /**
   * The tensor argument `tensor` and the axes argument `axes`, each one of its axes (VDM020); with
   * `noChannel`, c may not be among them (VDM017).
   */
  tensorAxes(tensor: string, axes: string, noChannel = false): { x: TensorValue; axes: string[] } {
    const x = this.tensor(tensor);
    const names = this.axes(axes);
    requireAxes(x, names, this.span(axes));
    if (noChannel && names.includes('c')) fail('VDM017', this.span(axes), `${this.what(axes)} cannot include the channel axis c`);
    return { x, axes: names };
  }

  optionalTensor(name: string): TensorValue | null {
    return this.isNone(name) ? null : this.tensor(name);
  }

  tensors(name: string): { tensor: TensorValue; span: Span }[] {
    const list = this.values(name);
    if (list.some((a) => a.value.kind === 'error')) throw new Poisoned();
    if (list.length === 0) fail('VDM015', this.callSpan, `${this.callee} needs at least one tensor`);
    return list.map((a) => ({ tensor: asTensor(a.value, a.span, this.what(name)), span: a.span }));
  }
}
