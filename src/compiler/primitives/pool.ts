// pool(x, kernel, mode: "avg"|"max"): non-overlapping pooling; each kernel size must divide its axis.
// A bare integer kernel applies to every axis but b and c.
import { fail } from '../diagnostics.ts';
import { resolvePerAxis, sizeOf, spatialAxes, withSizes } from './axes.ts';
import type { Primitive } from './types.ts';

export const pool: Primitive = {
  name: 'pool',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'kernel', kind: 'per-axis' },
    { name: 'mode', kind: 'string', default: 'avg', choices: ['avg', 'max'] },
  ],
  apply(a) {
    const x = a.tensor('x');
    const setting = a.perAxis('kernel');
    const names = typeof setting === 'number' ? spatialAxes(x) : setting.map(([n]) => n);
    const kernel = resolvePerAxis(setting, x.axes.map(([n]) => n), a.span('kernel'), a.what('kernel'), 1);
    const sizes = new Map<string, number>();
    for (const ax of names) {
      const n = sizeOf(x, ax, a.span('kernel'));
      const k = kernel.get(ax)!;
      if (k < 1 || n % k !== 0) fail('VDM033', a.span('kernel'), `pool kernel ${ax}=${k} does not divide ${ax}=${n}`);
      sizes.set(ax, n / k);
    }
    const mode = a.string('mode');
    return {
      inputs: [x],
      attrs: { kernel: Object.fromEntries(names.map((n) => [n, kernel.get(n)!])), mode },
      outputs: [{ axes: withSizes(x.axes, sizes), dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
};
