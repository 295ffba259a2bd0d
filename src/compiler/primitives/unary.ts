// The elementwise functions as primitives: same axes in, same axes out. Their value and backward
// rule come from the function's record (codegen/kernels/functions.ts), which also gives the
// elementwise kernel its WGSL; on plain numbers the function is evaluated at compile time (`sqrt(d)`).
import { FUNCTIONS, type FunctionName } from '../../codegen/kernels/functions.ts';
import type { Primitive } from './types.ts';

export function unaryPrimitive(name: FunctionName): Primitive {
  const { f64, derivative } = FUNCTIONS[name];
  return {
    name,
    args: [{ name: 'x', kind: 'tensor' }],
    scalar: f64,
    derivative,
    apply(a) {
      const x = a.tensor('x');
      return { inputs: [x], attrs: {}, outputs: [{ axes: x.axes, dtype: 'f32' }], params: [], macs: 0 };
    },
  };
}
