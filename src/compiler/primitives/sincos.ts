// sincos(x, over): a fixed 2-D/3-D sine-cosine position table with axes `over` and c = size(x, c).
// It is a buffer, not a parameter, and reads only x's sizes.
import { fail } from '../diagnostics.ts';
import { requireAxes, sizeOf } from './axes.ts';
import type { Primitive } from './types.ts';

export const sincos: Primitive = {
  name: 'sincos',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axes' },
  ],
  apply(a) {
    const x = a.tensor('x');
    const over = a.axes('over');
    requireAxes(x, over, a.span('over'));
    if (over.includes('c')) fail('VDM017', a.span('over'), "'over' of sincos cannot include the channel axis c");
    const dim = sizeOf(x, 'c', a.span('x'));
    return {
      inputs: [], attrs: { over, dim },
      outputs: [{ axes: [...over.map((n) => [n, sizeOf(x, n, a.span('over'))] as const), ['c', dim]], dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
};
