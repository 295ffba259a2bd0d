// Shape rule shared by the arithmetic operators on tensors: tensor (op) tensor broadcasts by axis
// name; tensor (op) number keeps the tensor's axes and records the number as an attribute.
import { broadcastAxes } from '../ir/broadcast.ts';
import type { Span } from '../ir/source.ts';
import type { TensorValue } from '../ir/values.ts';
import type { PrimitiveResult } from './types.ts';

export interface BinaryOperator {
  readonly name: string;
  readonly symbol: string;
  /** The operator on numbers (compile-time arithmetic and, later, the float64 reference). */
  readonly scalar: (a: number, b: number) => number;
  /** [d/da, d/db] of `scalar` at (a, b): the backward rule */
  readonly partials: (a: number, b: number) => readonly [number, number];
}

export function tensorTensor(left: TensorValue, right: TensorValue, span: Span): PrimitiveResult {
  const dtype = left.dtype === 'i32' && right.dtype === 'i32' ? 'i32' : 'f32';
  return {
    inputs: [left, right], attrs: {},
    outputs: [{ axes: broadcastAxes(left.axes, right.axes, span), dtype }],
    params: [], macs: 0,
  };
}

/** `side` says where the number was written: `2 * x` is "left", `x * 2` is "right". */
export function tensorNumber(t: TensorValue, scalar: number, side: 'left' | 'right'): PrimitiveResult {
  return {
    inputs: [t], attrs: { scalar, side },
    outputs: [{ axes: t.axes, dtype: 'f32' }],
    params: [], macs: 0,
  };
}
