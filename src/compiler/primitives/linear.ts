// linear(x, out, bias: true, init: "default", axis: c): a dense layer along one axis.
import { alongAxis } from '../named-tensor.ts';
import { numel } from '../values.ts';
import { sizeOf, withSize } from './axes.ts';
import { INITS } from './inits.ts';
import type { ParamShape, Primitive } from './types.ts';

export const linear: Primitive = {
  name: 'linear',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'out', kind: 'size' },
    { name: 'bias', kind: 'bool', default: true },
    { name: 'init', kind: 'string', default: 'default', choices: INITS },
    { name: 'axis', kind: 'axis', default: { axis: 'c' } },
  ],
  apply(a) {
    const x = a.tensor('x');
    const axis = a.axis('axis');
    const inSize = sizeOf(x, axis, a.span('axis'));
    const out = a.size('out');
    const bias = a.bool('bias');
    const init = a.string('init');
    const params: ParamShape[] = [{ leaf: 'weight', shape: [inSize, out], init }];
    if (bias) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return {
      inputs: [x],
      attrs: { out, bias, init, axis },
      outputs: [{ axes: withSize(x.axes, axis, out), dtype: 'f32' }],
      params,
      macs: (numel(x.axes) / inSize) * inSize * out,
    };
  },
  fans: (_leaf, shape) => [shape[0], shape[shape.length - 1]],
  // y[.., o] = sum_i x[.., i] weight[i, o] + bias[o], along `axis`
  reference({ inputs: [x], params, attrs }) {
    const out = Number(attrs.out);
    const w = params.get('weight')!;
    const b = params.get('bias');
    return alongAxis(x, String(attrs.axis), out, (src, dst) => {
      for (let o = 0; o < out; o++) {
        let acc = b ? b[o] : 0;
        for (let i = 0; i < src.length; i++) acc += src[i] * w[i * out + o];
        dst[o] = acc;
      }
    });
  },
};
