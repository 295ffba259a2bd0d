// concat(a, b, ..., axis: c) or concat(tuple, axis: c): join along one axis; every other axis must
// match by name and size (VDM024).
import { viewOver } from './lowering.ts';
import { fail } from '../ir/diagnostics.ts';
import { alongAxis, numelOf, position, relayout, sizeIn } from '../ir/named-tensor.ts';
import { formatAxes } from '../ir/values.ts';
import { sizeOf, withSize } from './axes.ts';
import { emitCopy, rangeView } from './slice.ts';
import type { Primitive } from './types.ts';

export const concat: Primitive = {
  name: 'concat',
  args: [{ name: 'xs', kind: 'tensors', variadic: true }, { name: 'axis', kind: 'axis', default: { axis: 'c' } }],
  apply(a) {
    const xs = a.tensors('xs');
    const axis = a.axis('axis');
    const first = xs[0].tensor;
    let total = 0;
    for (const { tensor, span } of xs) {
      total += sizeOf(tensor, axis, span);
      const others = (t: typeof tensor) => t.axes.filter(([n]) => n !== axis);
      const want = others(first);
      const got = others(tensor);
      const same = want.length === got.length && want.every(([n, s]) => got.some(([m, z]) => m === n && z === s));
      if (!same) {
        fail('VDM024', span, `cannot concat ${formatAxes(tensor.axes)} with ${formatAxes(first.axes)} along '${axis}'`,
          'all axes except the joined one must have the same names and sizes');
      }
      if (tensor.dtype !== first.dtype) fail('VDM024', span, `cannot concat ${tensor.dtype} with ${first.dtype}`);
    }
    return {
      inputs: xs.map((x) => x.tensor), attrs: { axis },
      outputs: [{ axes: withSize(first.axes, axis, total), dtype: first.dtype }],
      params: [], macs: 0,
    };
  },
  // One copy per input, over its own extent along the axis in the node's axis order: the input by
  // name, into the node's buffer from the running start along the axis (a view offset).
  lower(call) {
    const axis = String(call.attrs.axis);
    let at = 0;
    for (const x of call.inputs) {
      const size = x.axes.find(([n]) => n === axis)![1];
      const space = call.out.axes.map((a) => (a[0] === axis ? [axis, size] as const : a));
      emitCopy(call, space, viewOver(x, space), rangeView(call.out, space, axis, at), x.buffer);
      at += size;
    }
  },
  // Each input's gradient is one copy of its run of the node's gradient along the axis.
  lowerVjp(call) {
    const axis = String(call.attrs.axis);
    let at = 0;
    call.inputs.forEach((x, k) => {
      const size = x.axes.find(([n]) => n === axis)![1];
      const dx = call.inputGrads[k];
      if (dx) {
        const space = call.grad.axes.map((a) => (a[0] === axis ? [axis, size] as const : a));
        emitCopy({ ...call, out: dx }, space, rangeView(call.grad, space, axis, at), viewOver(dx, space), call.grad.buffer);
      }
      at += size;
    });
  },
  // Each input gets its own run of the gradient along the axis, in input order.
  vjp({ inputs, attrs, grad }) {
    const axis = String(attrs.axis);
    let at = 0;
    return {
      inputs: inputs.map((x) => {
        const n = sizeIn(x.axes, axis);
        const from = at;
        at += n;
        return alongAxis(grad, axis, n, (src, dst) => { for (let k = 0; k < n; k++) dst[k] = src[from + k]; });
      }),
    };
  },
  // Every input is laid out in the first input's axis order, so that each contributes, per outer
  // index, one contiguous run of (its size along the axis) * inner values, in input order.
  reference({ inputs, attrs }) {
    const axis = String(attrs.axis);
    const order = inputs[0].axes;
    const p = position(order, axis);
    const sizes = inputs.map((x) => sizeIn(x.axes, axis));
    const total = sizes.reduce((s, n) => s + n, 0);
    const axes = order.map((a, i) => (i === p ? [axis, total] as const : a));
    const outer = numelOf(order.slice(0, p));
    const inner = numelOf(order.slice(p + 1));
    const out = new Float64Array(outer * total * inner);
    let at = 0;
    inputs.forEach((x, k) => {
      const t = relayout(x, order.map((a, i) => (i === p ? [axis, sizes[k]] as const : a)));
      const run = sizes[k] * inner;
      for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * run, (o + 1) * run), o * total * inner + at * inner);
      at += sizes[k];
    });
    return { axes, data: out };
  },
};
