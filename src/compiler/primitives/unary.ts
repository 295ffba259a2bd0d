// Shared shape rule of the elementwise functions: same axes in, same axes out. On plain numbers the
// function is evaluated at compile time (e.g. `sqrt(d)`). `derivative(x, y)` is its backward rule.
import type { Primitive } from './types.ts';

export function unaryPrimitive(name: string, scalar: (x: number) => number, derivative: (x: number, y: number) => number): Primitive {
  return {
    name,
    args: [{ name: 'x', kind: 'tensor' }],
    scalar,
    derivative,
    apply(a) {
      const x = a.tensor('x');
      return { inputs: [x], attrs: {}, outputs: [{ axes: x.axes, dtype: 'f32' }], params: [], macs: 0 };
    },
  };
}
