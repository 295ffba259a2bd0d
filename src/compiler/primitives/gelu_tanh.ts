// gelu_tanh(x): the tanh approximation of gelu used by DiT's MLP.
import { unaryPrimitive } from './unary.ts';

const K = Math.sqrt(2 / Math.PI);
export const gelu_tanh = unaryPrimitive('gelu_tanh', (x) => 0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x * x * x))),
  (x) => {
    const th = Math.tanh(K * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * K * (1 + 3 * 0.044715 * x * x);
  });
