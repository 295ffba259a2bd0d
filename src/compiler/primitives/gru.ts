// gru(x, over, hidden, reverse: false): a gated recurrent unit scanning one axis; c -> hidden.
import { fail } from '../diagnostics.ts';
import { numel } from '../values.ts';
import { sizeOf, withSize } from './axes.ts';
import type { Primitive } from './types.ts';

export const gru: Primitive = {
  name: 'gru',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axis' },
    { name: 'hidden', kind: 'size' },
    { name: 'reverse', kind: 'bool', default: false },
  ],
  apply(a) {
    const x = a.tensor('x');
    const over = a.axis('over');
    if (over === 'c') fail('VDM017', a.span('over'), "'over' of gru cannot be the channel axis c");
    sizeOf(x, over, a.span('over'));
    const c = sizeOf(x, 'c', a.span('x'));
    const h = a.size('hidden');
    const reverse = a.bool('reverse');
    return {
      inputs: [x], attrs: { over, hidden: h, reverse },
      outputs: [{ axes: withSize(x.axes, 'c', h), dtype: 'f32' }],
      params: [
        { leaf: 'weight_ih', shape: [3 * h, c], init: 'default' },
        { leaf: 'weight_hh', shape: [3 * h, h], init: 'default' },
        { leaf: 'bias_ih', shape: [3 * h], init: 'zeros' },
        { leaf: 'bias_hh', shape: [3 * h], init: 'zeros' },
      ],
      macs: (numel(x.axes) / c) * 3 * h * (c + h),
    };
  },
};
