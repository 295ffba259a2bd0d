// GPU backward passes against the float64 backward rules, on small graphs per primitive family.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';

gpuTest('linear (rows coalesced, along c and along t) and every elementwise function and operator', async () => {
  const g = graphOf(model([
    '  y = linear(x, 6)',
    '  z = linear(x, 3, axis: t, bias: false)',
    '  e = linear(z, 6, axis: c)',
    '  u = silu(e) * 2 - e / (1 + exp(-e))',
    '  v = gelu(e) - sqrt(abs(e) + 1) + -tanh(e) + gelu_tanh(e) * sigmoid(e) + relu(e)',
    '  output o = linear(u + v, 4)',
    '  output p = y * y - 0.5',
  ].join('\n'), '', 'b = 2, c = 5, t = 4, h = 3, w = 7'));
  const { worst } = await expectGradientsMatch(g, 'linear + elementwise');
  assert.ok(worst < 1e-4);
});

gpuTest('a broadcast operand gets the sum over the axes it lacks', async () => {
  const g = graphOf(model([
    '  s = mean(x, over: (t, h, w))',   // [b, c]
    '  k = linear(s, 5)',
    '  output o = linear(x, 5) * k + k / 3',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 3, w = 4'));
  await expectGradientsMatch(g, 'broadcast');
});

test.run();
