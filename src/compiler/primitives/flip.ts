// flip(x, axis): reverse the order along one axis (for bidirectional propagation).
import { viewOver } from './lowering.ts';
import { alongAxis, sizeIn } from '../ir/named-tensor.ts';
import { sizeOf } from './axes.ts';
import { emitCopy } from './slice.ts';
import type { Primitive } from './types.ts';

export const flip: Primitive = {
  name: 'flip',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'axis', kind: 'axis' },
  ],
  apply(a) {
    const x = a.tensor('x');
    const axis = a.axis('axis');
    sizeOf(x, axis, a.span('axis'));
    return { inputs: [x], attrs: { axis }, outputs: [{ axes: x.axes, dtype: x.dtype }], params: [], macs: 0 };
  },
  // One copy reading x backwards along the axis: offset (n - 1) * stride and stride -stride there.
  lower(call) {
    const [x] = call.inputs;
    const axis = String(call.attrs.axis);
    const target = call.out.axes;
    const view = viewOver(x, target);
    const i = target.findIndex(([n]) => n === axis);
    const n = target[i][1];
    const s = view.strides[i];
    const from = n === 1 ? view : {
      shape: view.shape, offset: view.offset + (n - 1) * s,
      strides: view.strides.map((t, k) => (k === i ? -s : t)),
    };
    emitCopy(call, target, from, viewOver(call.out, target), x.buffer);
  },
  // A flip is its own inverse permutation: the gradient flipped back.
  vjp({ inputs: [x], attrs, grad }) {
    const axis = String(attrs.axis);
    const n = sizeIn(x.axes, axis);
    return { inputs: [alongAxis(grad, axis, n, (src, dst) => { for (let k = 0; k < n; k++) dst[k] = src[n - 1 - k]; })] };
  },
  reference({ inputs: [x], attrs }) {
    const axis = String(attrs.axis);
    const n = sizeIn(x.axes, axis);
    return alongAxis(x, axis, n, (src, dst) => { for (let k = 0; k < n; k++) dst[k] = src[n - 1 - k]; });
  },
};
