// slice(x, axis, start, end): the half-open range [start, end) of one axis.
import { elementwiseKernel } from '../../codegen/kernels/elementwise.ts';
import { input } from '../../codegen/kernels/expr.ts';
import { emitZeros, viewOver, type LowerCall, type Value } from './lowering.ts';
import type { View } from '../../codegen/kernels/view.ts';
import { fail } from '../ir/diagnostics.ts';
import type { AxisPair } from '../ir/graph.ts';
import { alongAxis, sizeIn } from '../ir/named-tensor.ts';
import { withSize } from './axes.ts';
import type { Primitive } from './types.ts';

export const slice: Primitive = {
  name: 'slice',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'axis', kind: 'axis' },
    { name: 'start', kind: 'int' },
    { name: 'end', kind: 'int' },
  ],
  apply(a) {
    const { x, axis, size: n } = a.tensorAxis('x', 'axis');
    const start = a.int('start');
    const end = a.int('end');
    if (start < 0 || end > n || start >= end) {
      fail('VDM035', a.callSpan, `slice ${start}..${end} is not a non-empty range inside ${axis}=${n}`);
    }
    return {
      inputs: [x], attrs: { axis, start, end },
      outputs: [{ axes: withSize(x.axes, axis, end - start), dtype: x.dtype }],
      params: [], macs: 0,
    };
  },
  // One copy: x viewed over the node's axes from `start` along the axis (an offset), into the node's buffer.
  lower(call) {
    const [x] = call.inputs;
    const axis = String(call.attrs.axis);
    const target = call.out.axes;
    emitCopy(call, target, rangeView(x, target, axis, Number(call.attrs.start)), viewOver(call.out, target), x.buffer);
  },
  // Zeros, then the gradient copied into [start, end) along the axis.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const target = call.grad.axes;
    emitZeros(call, dx);
    emitCopy({ ...call, out: dx }, target, viewOver(call.grad, target), rangeView(dx, target, String(call.attrs.axis), Number(call.attrs.start)), call.grad.buffer);
  },
  // The gradient zero-padded back to x's extent along the axis, at [start, end).
  vjp({ inputs: [x], attrs, grad }) {
    const axis = String(attrs.axis);
    const start = Number(attrs.start);
    const n = Number(attrs.end) - start;
    return { inputs: [alongAxis(grad, axis, sizeIn(x.axes, axis), (src, dst) => { for (let k = 0; k < n; k++) dst[start + k] = src[k]; })] };
  },
  reference({ inputs: [x], attrs }) {
    const start = Number(attrs.start);
    const n = Number(attrs.end) - start;
    return alongAxis(x, String(attrs.axis), n, (src, dst) => { for (let k = 0; k < n; k++) dst[k] = src[start + k]; });
  },
};

/**
 * The view of `v` over `target` axes by name, where `target` may be shorter than `v` along `axis`:
 * index k along it reads v's entry `start + k` (an offset), every other axis as viewOver.
 */
export function rangeView(v: Value, target: readonly AxisPair[], axis: string, start: number): View {
  const full = v.axes.find(([n]) => n === axis);
  if (!full) throw new Error(`lower: ${v.buffer} has no axis '${axis}'`);
  const i = target.findIndex(([n]) => n === axis);
  const view = viewOver(v, target.map((a, k) => (k === i ? full : a)));
  if (start < 0 || start + target[i][1] > full[1]) throw new Error(`lower: range ${start}+${target[i][1]} outside ${axis}=${full[1]}`);
  return { shape: target.map(([, s]) => s), strides: view.strides, offset: view.offset + start * view.strides[i] };
}

/**
 * One elementwise copy (identity expression) over the iteration space `space`: out = from, both
 * views over `space`. f32 only: an i32 value would pass through f32 loads and stores, where
 * subnormal bit patterns may be flushed, so it is refused.
 */
export function emitCopy(call: LowerCall, space: readonly AxisPair[], from: View, to: View, fromBuffer: string): void {
  if (call.node.dtype !== 'f32') {
    throw new Error(`${call.node.op} (${call.node.path || 'node ' + call.node.id}): copies of ${call.node.dtype} values cannot be lowered yet`);
  }
  const spec = elementwiseKernel({
    shape: space.map(([, s]) => s),
    inputs: [{ name: 'x', view: from }],
    outputs: [{ name: 'out', view: to, expr: input('x') }],
  });
  call.emit(spec, [fromBuffer, call.out.buffer]);
}
