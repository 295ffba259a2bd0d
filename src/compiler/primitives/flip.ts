// flip(x, axis): reverse the order along one axis (for bidirectional propagation).
import { viewOver, type Value } from './lowering.ts';
import type { View } from '../../codegen/kernels/view.ts';
import type { AxisPair } from '../ir/graph.ts';
import { alongAxis, sizeIn } from '../ir/named-tensor.ts';
import { emitCopy } from './slice.ts';
import type { Primitive } from './types.ts';

export const flip: Primitive = {
  name: 'flip',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'axis', kind: 'axis' }],
  apply(a) {
    const { x, axis } = a.tensorAxis('x', 'axis');
    return { inputs: [x], attrs: { axis }, outputs: [{ axes: x.axes, dtype: x.dtype }], params: [], macs: 0 };
  },
  // One copy reading x backwards along the axis: offset (n - 1) * stride and stride -stride there.
  lower(call) {
    const [x] = call.inputs;
    const target = call.out.axes;
    emitCopy(call, target, flipped(x, target, String(call.attrs.axis)), viewOver(call.out, target), x.buffer);
  },
  // The same copy from the gradient into dx: a flip is its own inverse.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const target = call.grad.axes;
    emitCopy({ ...call, out: dx }, target, flipped(call.grad, target, String(call.attrs.axis)), viewOver(dx, target), call.grad.buffer);
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

/** `v` over `target` read backwards along `axis`: offset (n - 1) * stride and stride -stride there. */
function flipped(v: Value, target: readonly AxisPair[], axis: string): View {
  const view = viewOver(v, target);
  const i = target.findIndex(([n]) => n === axis);
  const n = target[i][1];
  const s = view.strides[i];
  return n === 1 ? view : { shape: view.shape, offset: view.offset + (n - 1) * s, strides: view.strides.map((t, k) => (k === i ? -s : t)) };
}
