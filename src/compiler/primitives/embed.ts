// embed(ids, classes, dim): a learned table lookup; ids [..] (i32) -> [.., c=dim]. For a label
// input, classes defaults to its table size (classes, plus one with a null class).
import { fail } from '../diagnostics.ts';
import type { Primitive } from './types.ts';

export const embed: Primitive = {
  name: 'embed',
  args: [
    { name: 'ids', kind: 'tensor' },
    { name: 'classes', kind: 'size', default: { computed: 'the label input\'s table size' } },
    { name: 'dim', kind: 'size' },
  ],
  apply(a) {
    const ids = a.tensor('ids');
    if (ids.dtype !== 'i32') fail('VDM017', a.span('ids'), "'ids' of embed must be integer labels (i32), got a f32 tensor");
    if (ids.axes.some(([n]) => n === 'c')) fail('VDM022', a.span('ids'), 'embed expects ids without a c axis');
    let classes: number;
    if (a.has('classes')) classes = a.size('classes');
    else if (ids.classes !== undefined) classes = ids.classes;
    else fail('VDM015', a.callSpan, "embed needs 'classes' (the ids do not come from a label input)");
    const dim = a.size('dim');
    return {
      inputs: [ids], attrs: { classes, dim },
      outputs: [{ axes: [...ids.axes, ['c', dim]], dtype: 'f32' }],
      params: [{ leaf: 'weight', shape: [classes, dim], init: 'normal' }],
      macs: 0,
    };
  },
};
