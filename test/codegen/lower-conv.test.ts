// Lowering of conv, pool, upsample, patchify and unpatchify, checked node by node against the float64 evaluation.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import type { AxisPair, Graph } from '../../src/compiler/ir/graph.ts';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { evaluate, exampleInputs } from '../../src/compiler/reference/evaluate.ts';
import { relayout } from '../../src/compiler/ir/named-tensor.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { runLowered } from '../../src/runtime/run-graph.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectLoweredMatches, liveParams } from './lower-check.ts';
import { assertCompilesClean, relError, seed } from './ref-check.ts';

const dims = 'b = 2, c = 4, t = 3, h = 5, w = 7';
const stepsOf = (g: Graph) => lowerGraph(g).steps.length;

/** `g` with an extra axis [name, size] inserted after axis `after` of the input and every node. */
function withAxis(g: Graph, name: string, size: number, after: string): Graph {
  const insert = (axes: readonly AxisPair[]) => axes.flatMap((a): AxisPair[] => (a[0] === after ? [a, [name, size]] : [a]));
  return {
    ...g,
    inputs: g.inputs.map((i) => ({ ...i, axes: insert(i.axes) })),
    nodes: g.nodes.map((n) => ({ ...n, axes: insert(n.axes) })),
  };
}

gpuTest('conv over (t, h, w) 3x3x3 padding 1, and over (h, w) stride 2 padding 1 (odd h != w)', async () => {
  const g = graphOf(model([
    '  a = conv(x, over: (t, h, w), kernel: 3, padding: 1, out: 6)',
    '  output o = conv(a, over: (h, w), kernel: 3, stride: 2, padding: 1, out: 5, bias: false)',
  ].join('\n'), '', dims));
  assert.is((await expectLoweredMatches(g, 'conv 3d + strided 2d')).dispatches, 2);
});

gpuTest('conv over t with dilation, uneven stride/padding per axis, and reversed over (w, h)', async () => {
  const g = graphOf(model([
    '  a = conv(x, over: t, kernel: 2, dilation: 2, padding: 1, out: 3)',
    '  b2 = conv(x, over: (w, h), kernel: (w: 3, h: 2), stride: (w: 2, h: 1), padding: (w: 1, h: 0))',
    '  output o = conv(x, over: (h, t), kernel: (h: 3, t: 2), padding: (h: 2, t: 1), dilation: (h: 2, t: 1), out: 2)',
    '  output p = a',
    '  output q = b2',
  ].join('\n'), '', dims));
  await expectLoweredMatches(g, 'dilated / reversed conv');
});

gpuTest('conv with groups, and depthwise', async () => {
  const g = graphOf(model([
    '  a = conv(x, over: (h, w), kernel: (h: 3, w: 1), groups: 2, out: 6, padding: (h: 1, w: 0))',
    '  output o = conv(a, over: (t, h, w), kernel: (t: 3, h: 1, w: 3), groups: 6, padding: 1)',
  ].join('\n'), '', 'b = 2, c = 4, t = 3, h = 5, w = 3'));
  await expectLoweredMatches(g, 'grouped / depthwise conv');
});

gpuTest('conv lowered for a hardware adapter (the workgroup-tile kernel) runs on this one too', async () => {
  const g = withAxis(graphOf(model([
    '  a = conv(x, over: (w, h), kernel: (w: 3, h: 2), stride: (w: 2, h: 1), padding: (w: 1, h: 1), groups: 2, out: 4)',
    '  output o = conv(a, over: t, kernel: 2, dilation: 2, padding: 1)',
  ].join('\n'), '', 'b = 2, c = 2, t = 3, h = 4, w = 5')), 'n', 2, 'c');
  const gpu = await openGpu();
  const lowered = lowerGraph(g, { software: false, features: gpu.features, info: {} });
  for (const s of lowered.steps) {
    assert.match(s.spec.key, /"kind":"tiles"/);
    await assertCompilesClean(s.spec);
  }
  const inputs = exampleInputs(g, seed);
  const params = liveParams(g);
  const ref = evaluate(g, inputs, params);
  const run = await runLowered(gpu, lowered, inputs, params, { everyNode: true });
  for (const node of g.nodes.filter((n) => n.op === 'conv')) {
    const { buffer, axes } = lowered.values[node.id];
    const err = relError(run.values.get(buffer)!, relayout(ref.values[node.id], axes).data);
    assert.ok(err < 1e-4, `tiles: node ${node.id} at '${node.path}': relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  }
});

gpuTest('conv with batch axes the kernel cannot walk as one: a dispatch per batch slice', async () => {
  // x [b, c, n, t, h, w] over (t, h, w): b and n are batch axes, c sits between them.
  const g = withAxis(graphOf(model('  output o = conv(x, over: (t, h, w), kernel: (t: 1, h: 3, w: 3), stride: (t: 1, h: 2, w: 1), padding: (t: 0, h: 1, w: 1), out: 3)', '',
    'b = 2, c = 2, t = 2, h = 5, w = 4')), 'n', 3, 'c');
  // In the node's own layout c sits between b and n; channels-last makes them one stride.
  assert.is(stepsOf(g), 2);
  assert.is(lowerGraph(g, undefined, 'channels-last').steps.length, 1);
  await expectLoweredMatches(g, 'conv over sliced batches');
  await expectLoweredMatches(g, 'conv over merged batches', 1e-4, 'channels-last');
});

gpuTest('pool avg and max', async () => {
  const g = graphOf(model([
    '  output o = pool(x, kernel: (h: 2, w: 3), mode: "max")',
    '  output p = pool(x, kernel: (t: 2, w: 2))',
    '  output q = pool(x, kernel: 2)',
  ].join('\n'), '', 'b = 2, c = 3, t = 2, h = 4, w = 6'));
  await expectLoweredMatches(g, 'pool');
});

gpuTest('upsample nearest and linear, by factor and like', async () => {
  const g = graphOf(model([
    '  s = pool(x, kernel: (h: 2, w: 2))',
    '  output o = upsample(s, like: x, mode: "linear")',
    '  output p = upsample(x, factor: (h: 2, w: 3))',
    '  output q = upsample(x, factor: (t: 2, w: 2), mode: "linear")',
  ].join('\n'), '', 'b = 1, c = 3, t = 2, h = 4, w = 6'));
  await expectLoweredMatches(g, 'upsample');
});

gpuTest('patchify then unpatchify: (t: 2, h: 2, w: 2), (t: 1, h: 2, w: 2), and some axes only', async () => {
  const g = graphOf(model([
    '  p = patchify(x, patch: (t: 2, h: 2, w: 2))',
    '  output o = unpatchify(p, patch: (t: 2, h: 2, w: 2))',
    '  q = patchify(x, patch: (t: 1, h: 2, w: 2))',
    '  output r = unpatchify(q, patch: (t: 1, h: 2, w: 2))',
    '  s = patchify(x, patch: (w: 2, t: 2))',
    '  output u = unpatchify(s, patch: (w: 2, t: 2))',
    '  output v = unpatchify(x, patch: (h: 2))',
    '  output z = p',
  ].join('\n'), '', 'b = 2, c = 2, t = 2, h = 4, w = 6'));
  await expectLoweredMatches(g, 'patchify / unpatchify');
});

test.run();
