// mean(x, over): average over axes, removing them.
import { requireAxes } from './axes.ts';
import type { Primitive } from './types.ts';

export const mean: Primitive = {
  name: 'mean',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axes' },
  ],
  apply(a) {
    const x = a.tensor('x');
    const over = a.axes('over');
    requireAxes(x, over, a.span('over'));
    return {
      inputs: [x], attrs: { over },
      outputs: [{ axes: x.axes.filter(([n]) => !over.includes(n)), dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
};
