// Size-1 axes broadcasting by name on the adapter: forward (fused chains and plain kernels) node by
// node against float64, and the backward, whose size-1 operand sums the gradient over the axis.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';
import { expectLoweredMatches } from './lower-check.ts';

const DIMS = 'b = 2, c = 3, t = 4, h = 3, w = 5';
const BODY = [
  '  first = linear(slice(x, t, 0, 1), 3)',
  '  g = linear(pool(x, kernel: (h: 3, w: 5)), 3)',
  '  y = first * x + x / (2 + g * g)',
  '  output o = y - first * g',
  '  output p = g - x',
].join('\n');

gpuTest('forward: size-1 operands on either side, in fused chains, match float64 node by node', async () => {
  await expectLoweredMatches(graphOf(model(BODY, '', DIMS)), 'size-1 broadcast');
});

gpuTest('backward: size-1 operands get the gradient summed over the broadcast axes', async () => {
  await expectGradientsMatch(graphOf(model(BODY, '', DIMS)), 'size-1 broadcast');
});

test.run();
