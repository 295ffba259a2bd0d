// GPU backward of the embeddings (embed, sinusoidal) and the copy primitives (expand, concat,
// slice, flip, param) against the float64 backward rules, each behind a parameter so that its own
// rule runs.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { lowerBackward } from '../../src/codegen/backward.ts';
import { lowerGraph } from '../../src/codegen/lower.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { Value } from '../../src/compiler/primitives/lowering.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';

/** The kernel families of the backward steps (keys up to the first ':'). */
function backwardKernels(g: Graph): string[] {
  const forward = lowerGraph(g, undefined, 'node', false);
  const seeds = new Map<string, Value>(g.outputs.map((o) => [o.name, forward.outputs.get(o.name)!]));
  const all = lowerBackward(g, forward, seeds);
  return all.steps.slice(forward.steps.length).map((s) => s.spec.key.split(':')[0]);
}

gpuTest('embed of class labels: one scan of the ids for a small batch, per-row lists for a large one', async () => {
  const small = graphOf(model([
    '  input y : label[b](classes: 5, null: true)',
    '  output o = linear(silu(embed(y, dim: 6) as table), 3)',
  ].join('\n'), '', 'b = 3, c = 2, t = 1, h = 1, w = 1'));
  assert.equal(backwardKernels(small).filter((k) => k.startsWith('embed')), ['embed-backward']);
  await expectGradientsMatch(small, 'embed (small batch)');
  const large = graphOf(model([
    '  input y : label[b](classes: 6)',
    '  output o = embed(y, dim: 4) as table',
  ].join('\n'), '', 'b = 40, c = 1, t = 1, h = 1, w = 1'));
  assert.equal(backwardKernels(large).filter((k) => k.startsWith('embed')), ['embed-links', 'embed-chain-sum']);
  await expectGradientsMatch(large, 'embed (large batch)');
});

gpuTest('sinusoidal: of a timestep into an MLP (no input gradient), and of a learned scalar per (b, t)', async () => {
  const g = graphOf(model([
    '  input s : timestep[b]',
    '  e = sinusoidal(s, dim: 8)',
    '  output o = linear(silu(linear(e, 6) as fc1), 6) as fc2',
    '  u = 3 * mean(linear(x, 2) as proj, over: (c, h, w))', // [b, t], a few radians
    '  output p = linear(sinusoidal(u, dim: 10, max_period: 50), 3) as head',
  ].join('\n'), '', 'b = 2, c = 3, t = 3, h = 2, w = 2'));
  await expectGradientsMatch(g, 'sinusoidal');
});

gpuTest('flatten and unflatten: a joint token axis from two differently ordered operands, and back', async () => {
  const g = graphOf(model([
    '  input y : text[b, l=5, c=3]',
    '  a = linear(x, 3) as pa',
    '  e = expand(mean(a, over: t), sizes: (t: 3)) * a', // [b, c, h, w, t]
    '  j = concat(flatten(linear(y, 3) as py, over: l, into: n), flatten(e, over: (t, h, w), into: n), axis: n)',
    '  output o = tanh(j) * 2',
    '  output u = unflatten(slice(j, n, 5, 41), n, sizes: (t: 3, h: 3, w: 4)) * a',
  ].join('\n'), '', 'b = 2, c = 3, t = 3, h = 3, w = 4'));
  await expectGradientsMatch(g, 'flatten');
});

gpuTest('expand, concat (differently ordered inputs, one repeated), slice, flip and param', async () => {
  const g = graphOf(model([
    '  a = linear(x, 4) as pa',
    '  e = expand(mean(a, over: t), sizes: (t: 3)) * a', // [b, c, h, w, t]
    '  output j = concat(a, tanh(e), a, axis: t)',
    '  output k = concat(slice(a, c, 1, 3), e, axis: c)',
    '  output s = slice(e, h, 1, 3) * 2',
    '  output f = flip(a, w) * flip(e, t) + flip(a, c)',
    '  output q = a * param(sizes: (w: 4, t: 3), init: "normal") + expand(mean(a, over: (t, h)), sizes: (h: 3, t: 3))',
  ].join('\n'), '', 'b = 2, c = 3, t = 3, h = 3, w = 4'));
  await expectGradientsMatch(g, 'copies');
});

test.run();
