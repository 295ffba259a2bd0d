// groupnorm(x, groups: 32, affine: true, eps: 1e-5, over): statistics per group of channels over
// the `over` axes (default: every axis but b and c).
import { fail } from '../diagnostics.ts';
import { requireAxes, sizeOf } from './axes.ts';
import type { ParamShape, Primitive } from './types.ts';

export const groupnorm: Primitive = {
  name: 'groupnorm',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'groups', kind: 'size', default: 32 },
    { name: 'affine', kind: 'bool', default: true },
    { name: 'eps', kind: 'number', default: 1e-5 },
    { name: 'over', kind: 'axes', default: { computed: 'every axis but b and c' } },
  ],
  apply(a) {
    const x = a.tensor('x');
    const c = sizeOf(x, 'c', a.span('x'));
    const groups = a.size('groups');
    if (c % groups !== 0) fail('VDM030', a.span('groups'), `groups=${groups} does not divide c=${c}`);
    const over = a.has('over') ? a.axes('over') : x.axes.map(([n]) => n).filter((n) => n !== 'b' && n !== 'c');
    requireAxes(x, over, a.span('over'));
    if (over.includes('c')) fail('VDM017', a.span('over'), "'over' of groupnorm cannot include the channel axis c");
    const affine = a.bool('affine');
    const eps = a.positive('eps');
    const params: ParamShape[] = affine
      ? [{ leaf: 'weight', shape: [c], init: 'ones' }, { leaf: 'bias', shape: [c], init: 'zeros' }]
      : [];
    return { inputs: [x], attrs: { groups, affine, eps, over }, outputs: [{ axes: x.axes, dtype: 'f32' }], params, macs: 0 };
  },
};
