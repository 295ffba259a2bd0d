// split(x, n, axis: c) -> a tuple of n equal parts along the axis.
import { elementwiseKernel } from '../../codegen/kernels/elementwise.ts';
import { input } from '../../codegen/kernels/expr.ts';
import { emitZeros, viewOver, type LowerCall, type Value } from './lowering.ts';
import { fail } from '../ir/diagnostics.ts';
import { alongAxis, sizeIn } from '../ir/named-tensor.ts';
import { withSize } from './axes.ts';
import { emitCopy, rangeView } from './slice.ts';
import type { Primitive } from './types.ts';

export const split: Primitive = {
  name: 'split',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'n', kind: 'size' }, { name: 'axis', kind: 'axis', default: { axis: 'c' } }],
  apply(a) {
    const { x, axis, size } = a.tensorAxis('x', 'axis');
    const n = a.size('n');
    if (size % n !== 0) fail('VDM030', a.span('n'), `cannot split ${axis}=${size} into ${n} equal parts`);
    const axes = withSize(x.axes, axis, size / n);
    return {
      inputs: [x], attrs: { n, axis },
      outputs: Array.from({ length: n }, (_, index) => ({ axes, dtype: x.dtype, attrs: { index } })),
      tuple: true,
      params: [], macs: 0,
    };
  },
  // Each node is one part: a copy of x from index * (size / n) along the axis (a view offset).
  lower(call) {
    const [x] = call.inputs;
    const axis = String(call.attrs.axis);
    const target = call.out.axes;
    const part = target.find(([n]) => n === axis)![1];
    emitCopy(call, target, rangeView(x, target, axis, Number(call.attrs.index) * part), viewOver(call.out, target), x.buffer);
  },
  // (The driver lowers a whole tuple of parts as one kernel when it can: emitSplitParts.)
  // Zeros, then the part's gradient copied into its run along the axis (each part writes a whole
  // contribution; the driver sums the n of them).
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    const axis = String(call.attrs.axis);
    const target = call.grad.axes;
    const part = target.find(([n]) => n === axis)![1];
    emitZeros(call, dx);
    emitCopy({ ...call, out: dx }, target, viewOver(call.grad, target), rangeView(dx, target, axis, Number(call.attrs.index) * part), call.grad.buffer);
  },
  // The part's gradient goes back into its run along the axis, zeros elsewhere (the other parts'
  // nodes add theirs).
  vjp({ inputs: [x], attrs, grad }) {
    const axis = String(attrs.axis);
    const size = sizeIn(x.axes, axis);
    const part = size / Number(attrs.n);
    const start = Number(attrs.index) * part;
    return { inputs: [alongAxis(grad, axis, size, (src, dst) => { for (let k = 0; k < part; k++) dst[start + k] = src[k]; })] };
  },
  // Each output node is one part: the index-th run of size / n consecutive entries along the axis.
  reference({ inputs: [x], attrs }) {
    const axis = String(attrs.axis);
    const part = sizeIn(x.axes, axis) / Number(attrs.n);
    const start = Number(attrs.index) * part;
    return alongAxis(x, axis, part, (src, dst) => { for (let k = 0; k < part; k++) dst[k] = src[start + k]; });
  },
};

/** Parts one kernel writes at most: x's binding and one per part within WebGPU's 8 storage buffers. */
export const MAX_SPLIT_PARTS = 7;

/**
 * Every part of a split in one dispatch: part k reads x through the same binding at offset k · size
 * / n along the axis (codegen/lower.ts calls it at the last part's node, once all parts' buffers exist).
 */
export function emitSplitParts(call: Pick<LowerCall, 'emit' | 'node'>, x: Value, parts: readonly Value[], axis: string): void {
  if (call.node.dtype !== 'f32') throw new Error(`split (${call.node.path || 'node ' + call.node.id}): copies of ${call.node.dtype} values cannot be lowered yet`);
  if (parts.length > MAX_SPLIT_PARTS) throw new Error(`emitSplitParts: ${parts.length} parts, at most ${MAX_SPLIT_PARTS}`);
  const target = parts[0].axes;
  const size = target.find(([n]) => n === axis)![1];
  call.emit(elementwiseKernel({
    shape: target.map(([, s]) => s),
    inputs: parts.map((_, k) => ({ name: `x${k}`, view: rangeView(x, target, axis, k * size), ...(k ? { binding: 'x0' } : {}) })),
    outputs: parts.map((p, k) => ({ name: `out${k}`, view: viewOver(p, target), expr: input(`x${k}`) })),
  }), [x.buffer, ...parts.map((p) => p.buffer)]);
}
