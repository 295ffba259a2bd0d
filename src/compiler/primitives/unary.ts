// Shared shape rule of the elementwise functions: same axes in, same axes out. On plain numbers the
// function is evaluated at compile time (e.g. `sqrt(d)`).
import type { Primitive } from './types.ts';

export function unaryPrimitive(name: string, scalar: (x: number) => number): Primitive {
  return {
    name,
    args: [{ name: 'x', kind: 'tensor' }],
    scalar,
    apply(a) {
      const x = a.tensor('x');
      return { inputs: [x], attrs: {}, outputs: [{ axes: x.axes, dtype: 'f32' }], params: [], macs: 0 };
    },
  };
}
