// slice(x, axis, start, end): the half-open range [start, end) of one axis.
import { fail } from '../diagnostics.ts';
import { alongAxis } from '../named-tensor.ts';
import { sizeOf, withSize } from './axes.ts';
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
    const x = a.tensor('x');
    const axis = a.axis('axis');
    const n = sizeOf(x, axis, a.span('axis'));
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
  reference({ inputs: [x], attrs }) {
    const start = Number(attrs.start);
    const n = Number(attrs.end) - start;
    return alongAxis(x, String(attrs.axis), n, (src, dst) => { for (let k = 0; k < n; k++) dst[k] = src[start + k]; });
  },
};
