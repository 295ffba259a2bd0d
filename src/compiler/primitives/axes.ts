// Axis helpers shared by the shape rules: lookups that report VDM020 with the tensor's axes,
// and resolution of per-axis settings (one integer, or a named tuple).
import { fail } from '../ir/diagnostics.ts';
import type { PerAxis } from '../ir/convert.ts';
import type { Span } from '../ir/source.ts';
import { didYouMean } from '../ir/suggest.ts';
import { formatAxes, type Axis, type TensorValue } from '../ir/values.ts';

export function sizeOf(t: TensorValue, axis: string, span: Span): number {
  for (const [n, s] of t.axes) if (n === axis) return s;
  return fail('VDM020', span, `axis '${axis}' is not in the tensor ${formatAxes(t.axes)}`,
    didYouMean(axis, t.axes.map(([n]) => n)));
}

export function requireAxes(t: TensorValue, axes: readonly string[], span: Span): void {
  for (const a of axes) sizeOf(t, a, span);
}

export function withSizes(axes: readonly Axis[], sizes: ReadonlyMap<string, number>): Axis[] {
  return axes.map(([n, s]) => [n, sizes.get(n) ?? s] as const);
}

export function withSize(axes: readonly Axis[], axis: string, size: number): Axis[] {
  return axes.map(([n, s]) => [n, n === axis ? size : s] as const);
}

/** Axes a bare integer applies to when no `over` is given: all but batch and channel. */
export function spatialAxes(t: TensorValue): string[] {
  return t.axes.map(([n]) => n).filter((n) => n !== 'b' && n !== 'c');
}

/**
 * A per-axis setting as a map over `axes`: an integer applies to all of them; a named tuple must
 * name only axes among them (VDM020); missing ones take `fallback`, or are VDM015 without one.
 */
export function resolvePerAxis(
  setting: PerAxis, axes: readonly string[], span: Span, what: string, fallback?: number,
): Map<string, number> {
  const out = new Map<string, number>();
  if (typeof setting === 'number') {
    for (const a of axes) out.set(a, setting);
    return out;
  }
  for (const [n, v] of setting) {
    if (!axes.includes(n)) {
      fail('VDM020', span, `${what} names axis '${n}', which is not among (${axes.join(', ')})`, didYouMean(n, axes));
    }
    out.set(n, v);
  }
  for (const a of axes) {
    if (out.has(a)) continue;
    if (fallback === undefined) fail('VDM015', span, `${what} gives no value for axis '${a}'`);
    out.set(a, fallback);
  }
  return out;
}

export function product(values: Iterable<number>): number {
  let p = 1;
  for (const v of values) p *= v;
  return p;
}
