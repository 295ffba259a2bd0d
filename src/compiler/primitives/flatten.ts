// flatten(x, over, into): merge the `over` axes into one new axis `into`, row-major in the order
// listed (the last fastest), placed where the first of them stood in x. One axis renames it:
// flatten(e, over: l, into: n). Joint attention over text and video tokens is written with it:
// both become [b, n, c] and concat along n. unflatten (unflatten.ts) is its inverse.
import type { View } from '../../codegen/kernels/view.ts';
import { fail } from '../ir/diagnostics.ts';
import type { AxisPair } from '../ir/graph.ts';
import { numelOf, relayout, stridesOf } from '../ir/named-tensor.ts';
import type { NamedTensor } from '../ir/named-tensor.ts';
import { didYouMean } from '../ir/suggest.ts';
import { formatAxes, type Axis } from '../ir/values.ts';
import { viewOver, type Value } from './lowering.ts';
import { emitCopy } from './slice.ts';
import { product } from './axes.ts';
import type { Primitive } from './types.ts';

export const flatten: Primitive = {
  name: 'flatten',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'over', kind: 'axes' }, { name: 'into', kind: 'axis' }],
  apply(a) {
    const x = a.tensor('x');
    const over = a.axes('over');
    const into = a.axis('into');
    const names = x.axes.map(([n]) => n);
    for (const n of over) {
      if (n === 'c') fail('VDM045', a.span('over'), 'flatten cannot merge the channel axis c', 'flatten token axes only; c stays the feature axis');
      if (!names.includes(n)) {
        fail('VDM045', a.span('over'), `flatten over axis '${n}', which is not in the tensor ${formatAxes(x.axes)}`,
          didYouMean(n, names) ?? 'list axes of the tensor');
      }
    }
    if (into === 'c' || names.includes(into)) {
      fail('VDM045', a.span('into'), `flatten into '${into}', which is already an axis of the tensor ${formatAxes(x.axes)}`,
        'give the merged axis a new name, e.g. n');
    }
    const sizes = over.map((n) => x.axes.find(([m]) => m === n)![1]);
    return {
      inputs: [x], attrs: { over, into },
      outputs: [{ axes: flattenAxes(x.axes, over, into, product(sizes)), dtype: x.dtype }],
      params: [], macs: 0,
    };
  },
  lower(call) {
    const [x] = call.inputs;
    const parts = overPairs(x.axes, call.attrs.over as string[]);
    const space = splitSpace(call.out.axes, String(call.attrs.into), parts);
    emitCopy(call, space, viewOver(x, space), splitView(call.out, String(call.attrs.into), parts, space), x.buffer);
  },
  // The same copy backwards: the gradient over `into` read as the `over` axes.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const parts = overPairs(dx.axes, call.attrs.over as string[]);
    const space = splitSpace(call.grad.axes, String(call.attrs.into), parts);
    emitCopy({ ...call, out: dx }, space, splitView(call.grad, String(call.attrs.into), parts, space), viewOver(dx, space), call.grad.buffer);
  },
  reference: ({ inputs: [x], attrs }) => merge(x, attrs.over as string[], String(attrs.into)),
  // A relabelling of the values: the gradient is unflatten of the output's gradient.
  vjp: ({ inputs: [x], attrs, grad }) => ({ inputs: [unmerge(grad, String(attrs.into), overPairs(x.axes, attrs.over as string[]))] }),
};

/** x's axes with `over` removed and `into` (of `size`) where the first of them stood. */
export function flattenAxes(axes: readonly Axis[], over: readonly string[], into: string, size: number): Axis[] {
  const at = axes.findIndex(([n]) => over.includes(n));
  const out: Axis[] = [];
  axes.forEach((ax, i) => {
    if (i === at) out.push([into, size]);
    if (!over.includes(ax[0])) out.push(ax);
  });
  return out;
}

/** The `over` axes with their sizes in `axes`, in the order listed. */
export const overPairs = (axes: readonly AxisPair[], over: readonly string[]): AxisPair[] =>
  over.map((n) => axes.find(([m]) => m === n)!);

/** `x` with the `over` axes merged into `into`, row-major in the order listed (data copied once). */
export function merge(x: NamedTensor, over: readonly string[], into: string): NamedTensor {
  const kept = x.axes.filter(([n]) => !over.includes(n));
  const parts = overPairs(x.axes, over);
  const t = relayout(x, [...kept, ...parts]);
  return { axes: [...kept, [into, numelOf(parts)]], data: t.data };
}

/** `x` with axis `from` read as the axes `parts` (row-major, the last fastest). */
export function unmerge(x: NamedTensor, from: string, parts: readonly AxisPair[]): NamedTensor {
  const kept = x.axes.filter(([n]) => n !== from);
  const t = relayout(x, [...kept, [from, numelOf(parts)]]);
  return { axes: [...kept, ...parts], data: t.data };
}

/** `axes` with `axis` replaced by `parts`, in place: the iteration space of the copy. */
export function splitSpace(axes: readonly AxisPair[], axis: string, parts: readonly AxisPair[]): AxisPair[] {
  return axes.flatMap((a): AxisPair[] => (a[0] === axis ? [...parts] : [a]));
}

/**
 * The view of `v` over `space`, where `v`'s axis `axis` holds the row-major flattening of `parts`
 * (axes of `space`, the last fastest, whatever their order in `space`); every other axis by name.
 */
export function splitView(v: Value, axis: string, parts: readonly AxisPair[], space: readonly AxisPair[]): View {
  const own = v.strides ?? stridesOf(v.axes);
  const i = v.axes.findIndex(([n]) => n === axis);
  if (i < 0) throw new Error(`lower: ${v.buffer} has no axis '${axis}'`);
  if (numelOf(parts) !== v.axes[i][1]) throw new Error(`lower: ${axis}=${v.axes[i][1]} is not ${numelOf(parts)} (${formatAxes(parts)})`);
  const inner = new Map<string, number>();
  let acc = own[i];
  for (let k = parts.length - 1; k >= 0; k--) { inner.set(parts[k][0], acc); acc *= parts[k][1]; }
  const strides = space.map(([n, s]) => {
    if (inner.has(n)) return inner.get(n)!;
    const j = v.axes.findIndex(([m]) => m === n);
    if (j < 0 || v.axes[j][1] !== s) throw new Error(`lower: ${v.buffer} has no axis '${n}' of ${s}`);
    return own[j];
  });
  return { shape: space.map(([, s]) => s), strides, offset: v.offset ?? 0 };
}
