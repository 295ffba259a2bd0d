// param(sizes, init: "normal"): a learned tensor with the given named axes.
import { contiguous } from '../../codegen/kernels/view.ts';
import { checkSize } from '../ir/convert.ts';
import { relayout, tensor } from '../ir/named-tensor.ts';
import { INITS } from './inits.ts';
import { emitCopy } from './slice.ts';
import type { Primitive } from './types.ts';

export const param: Primitive = {
  name: 'param',
  args: [{ name: 'sizes', kind: 'named-sizes' }, { name: 'init', kind: 'string', default: 'normal', choices: INITS }],
  apply(a) {
    const sizes = a.namedNumbers('sizes');
    for (const [n, s] of sizes) checkSize(s, a.span('sizes'), `size of axis '${n}'`);
    const init = a.string('init');
    return {
      inputs: [], attrs: { sizes: Object.fromEntries(sizes), init },
      outputs: [{ axes: sizes, dtype: 'f32' }],
      params: [{ leaf: 'weight', shape: sizes.map(([, s]) => s), init }],
      macs: 0,
    };
  },
  // No layer defines the fans of a free tensor: the last size (the feature axis, as for a linear's
  // output) for both, so 'default' is ±1/sqrt(last) and 'xavier_uniform' ±sqrt(3 / last).
  fans: (_leaf, shape) => [shape[shape.length - 1] ?? 1, shape[shape.length - 1] ?? 1],
  // One copy of the weight buffer (row-major over the node's axes, as the node's own buffer).
  lower(call) {
    const shape = call.out.axes.map(([, s]) => s);
    emitCopy(call, call.out.axes, contiguous(shape), contiguous(shape), call.params.get('weight')!);
  },
  // The weight's gradient is the node's, copied row-major over the node's axes.
  lowerVjp(call) {
    const shape = call.out.axes.map(([, s]) => s);
    emitCopy({ ...call, out: { buffer: call.paramGrads.get('weight')!, axes: call.out.axes } }, call.out.axes, contiguous(shape), contiguous(shape), call.grad.buffer);
  },
  // The value is the weight, so its gradient is the weight's (row-major over the node's axes).
  vjp: ({ axes, grad }) => ({ inputs: [], params: new Map([['weight', relayout(grad, axes).data]]) }),
  // The value is the weight itself, row-major over the sizes in their given order (the node's axes).
  reference: ({ params, axes }) => tensor(axes, params.get('weight')!),
};
