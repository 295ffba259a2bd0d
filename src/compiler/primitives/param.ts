// param(sizes, init: "normal"): a learned tensor with the given named axes.
import { checkSize } from '../convert.ts';
import { INITS } from './inits.ts';
import type { Primitive } from './types.ts';

export const param: Primitive = {
  name: 'param',
  args: [
    { name: 'sizes', kind: 'named-sizes' },
    { name: 'init', kind: 'string', default: 'normal', choices: INITS },
  ],
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
};
