// Lowering of linear layers and elementwise operators, checked node by node against the float64 evaluation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectLoweredMatches } from './lower-check.ts';

test('linear along c and along t, chained; operators broadcast by name, numbers on either side', async () => {
  const g = graphOf(model([
    '  y = linear(x, 6)',                         // c in the middle of [b, c, t, h, w]
    '  z = linear(x, 3, axis: t, bias: false)',   // contraction over t
    '  e = linear(z, 6, axis: c)',                // [b, c=6, t=3, h, w]
    '  u = silu(e) * 2 - e / (1 + exp(-e))',
    '  output o = u + gelu(e) - sqrt(abs(e) + 1) + -tanh(e)',
    '  output q = sqrt(abs(z) + 1)',
    '  output p = y * 0.5',
  ].join('\n'), '', 'b = 2, c = 5, t = 4, h = 3, w = 7'));
  const { dispatches } = await expectLoweredMatches(g, 'linear + elementwise');
  assert.ok(dispatches >= 8);
});

test('a primitive with no lowering is a clear error', () => {
  const g = graphOf(model('  output o = flip(x, t)'));
  const fake = { ...g, nodes: g.nodes.map((n) => (n.op === 'flip' ? { ...n, op: 'no_such_op' } : n)) };
  assert.throws(() => lowerGraph(fake), /'no_such_op' .* cannot be lowered to kernels yet/);
});

test.run();
