// GPU backward of the GRU (input projection recomputed, backprop through time, weight GEMMs) against
// the float64 backward; chained after a linear so the gradient reaching x counts too.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';

gpuTest('gru over t and over w in reverse on a linear of x (c not last: dW_ih sums per-b partials)', async () => {
  const g = graphOf(model([
    '  y = linear(x, 4)',
    '  output f = gru(y, over: t, hidden: 5)',
    '  output r = gru(y, over: w, hidden: 3, reverse: true)',
  ].join('\n'), '', 'b = 2, c = 3, t = 4, h = 2, w = 3'));
  assert.equal(g.nodes.find((n) => n.op === 'linear')!.axes.map(([n]) => n), ['b', 'c', 't', 'h', 'w']);
  await expectGradientsMatch(g, 'gru over t and w');
});

gpuTest('gru_propagation: frame means, a reverse GRU over t, broadcast back residually; a GRU of a GRU', async () => {
  const g = graphOf(model([
    '  y = linear(x, 4)',
    '  s = gru(mean(y, over: (h, w)), over: t, hidden: 4, reverse: true)',
    '  z = y + s',
    '  output o = gru(gru(z, over: t, hidden: 3), over: h, hidden: 2)',
  ].join('\n'), '', 'b = 2, c = 3, t = 5, h = 2, w = 2'));
  await expectGradientsMatch(g, 'gru propagation');
});

test.run();
