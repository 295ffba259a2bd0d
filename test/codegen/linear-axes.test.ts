// linear over several axes on the adapter: the copy to (others..., over...) and the GEMM node by
// node against float64, and the backward (dx spread back over x's layout, dW, db) against float64.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { TARGET_TRAITS } from '../../src/pipeline.ts';
import { gpuTest } from '../gpu.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';
import { expectLoweredMatches } from './lower-check.ts';

const DIMS = 'b = 2, c = 3, t = 4, h = 2, w = 5';
const BODY = [
  '  y = linear(x, 6, axis: (t, c))',
  '  z = linear(silu(y), 3, axis: (h, c), bias: false)',
  '  output o = z * linear(x, 3, axis: (t, h))',
].join('\n');

gpuTest('forward: linear over (t, c), (h, c) and (t, h) matches float64 node by node', async () => {
  await expectLoweredMatches(graphOf(model(BODY, '', DIMS)), 'linear over several axes');
});

gpuTest('backward: dx, dW and db of linears over several axes match float64', async () => {
  await expectGradientsMatch(graphOf(model(BODY, '', DIMS)), 'linear over several axes');
});

test('a linear over several axes is one copy and one GEMM; nothing fuses into it', () => {
  const g = graphOf(model('  output o = silu(linear(x, 6, axis: (t, c)))', '', DIMS));
  const kinds = lowerGraph(g, TARGET_TRAITS.software).steps.map((s) => s.spec.key.split(/[:|]/)[0]);
  assert.equal(kinds, ['elementwise', 'gemm', 'elementwise']);
});

test.run();
