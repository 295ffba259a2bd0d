// GPU backward passes of conv, pool and upsample against the float64 backward rules. Every conv
// reads a linear's output, so its input gradient is needed too (it flows on into the linear).
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import type { AxisPair, Graph } from '../../src/compiler/ir/graph.ts';
import { lowerBackward } from '../../src/codegen/backward.ts';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { kernelFamily } from '../../src/codegen/kernels/kernel.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';

/** `g` with an extra axis [name, size] inserted after axis `after` of the input and every node. */
function withAxis(g: Graph, name: string, size: number, after: string): Graph {
  const insert = (axes: readonly AxisPair[]) => axes.flatMap((a): AxisPair[] => (a[0] === after ? [a, [name, size]] : [a]));
  return { ...g, inputs: g.inputs.map((i) => ({ ...i, axes: insert(i.axes) })), nodes: g.nodes.map((n) => ({ ...n, axes: insert(n.axes) })) };
}

/** The kernel families of the backward steps of `g`, in order. */
function backwardFamilies(g: Graph): string[] {
  const forward = lowerGraph(g, undefined, 'node', false);
  const seeds = new Map(g.outputs.map((o) => [o.name, { buffer: forward.outputs.get(o.name)!.buffer, axes: forward.outputs.get(o.name)!.axes }]));
  return lowerBackward(g, forward, seeds).steps.slice(forward.steps.length).map((s) => kernelFamily(s.spec.key));
}

const worst: Record<string, number> = {};
async function check(g: Graph, what: string) {
  worst[what] = (await expectGradientsMatch(g, what)).worst;
}

gpuTest('conv 3x3x3 "same", then a (2+1)D pair: (h, w) then t', async () => {
  const g = graphOf(model([
    '  z = linear(x, 3)',
    '  a = conv(z, over: (t, h, w), kernel: 3, out: 4)',
    '  s = conv(silu(a), over: (h, w), kernel: 3, out: 3, bias: false)',
    '  output o = conv(s, over: t, kernel: 3, out: 2)',
  ].join('\n'), '', 'b = 2, c = 2, t = 3, h = 4, w = 5'));
  // stride 1: dx by the forward kernel over the flipped weight, never the gather
  const families = backwardFamilies(g);
  assert.ok(families.includes('conv-flip-weight') && families.includes('conv'), families.join(' '));
  assert.not.ok(families.includes('conv-backward-data'));
  await check(g, '3d same + (2+1)d');
});

gpuTest('depthwise (groups = channels), with a channel multiplier, and groups 2', async () => {
  const g = graphOf(model([
    '  z = linear(x, 4)',
    '  a = conv(z, over: (h, w), kernel: 3, groups: 4)',
    '  d = conv(z, over: (t, h, w), kernel: (t: 3, h: 1, w: 3), out: 8, groups: 4, bias: false)',
    '  output o = conv(a, over: (h, w), kernel: (h: 3, w: 1), groups: 2, out: 6, padding: (h: 1, w: 0))',
    '  output p = d',
  ].join('\n'), '', 'b = 1, c = 3, t = 2, h = 4, w = 5'));
  await check(g, 'depthwise / groups');
});

gpuTest('strided convs (a dropped tail, uneven stride and padding per axis) and dilation', async () => {
  const g = graphOf(model([
    '  z = linear(x, 3)',
    '  a = conv(z, over: (h, w), kernel: 3, stride: 2, padding: 1, out: 4)',
    '  b2 = conv(z, over: (w, h), kernel: (w: 3, h: 2), stride: (w: 3, h: 1), padding: (w: 1, h: 0), out: 2)',
    '  d = conv(z, over: t, kernel: 3, dilation: 2, out: 2)',
    '  e = conv(z, over: (t, w), kernel: 2, dilation: (t: 1, w: 3), stride: 2, padding: (t: 1, w: 0), out: 2)',
    '  output o = conv(a, over: (h, w), kernel: 3, out: 2)',
    '  output p = b2',
    '  output q = d * 2 - 1',
    '  output r = e',
  ].join('\n'), '', 'b = 1, c = 2, t = 5, h = 5, w = 7'));
  assert.ok(backwardFamilies(g).includes('conv-backward-data'));
  await check(g, 'strided / dilated');
});

gpuTest('padding beyond the reach (dy\'s range cut for the flipped conv), and batch axes the kernels cannot walk as one', async () => {
  const g = graphOf(model([
    '  z = linear(x, 2)',
    '  output o = conv(z, over: w, kernel: 2, padding: (w: 2), out: 3)',
    '  output p = conv(x, over: h, kernel: 3)', // on the input: no dx
  ].join('\n'), '', 'b = 2, c = 2, t = 1, h = 2, w = 4'));
  assert.is(backwardFamilies(g).filter((f) => f === 'conv-backward-data').length, 0);
  await check(g, 'wide padding');
  // x [b, c, n, t, h, w] over (t, h, w): b and n are batch axes with c between them, so one
  // dispatch per slice and the weight gradient's partials summed
  const s = withAxis(graphOf(model([
    '  z = linear(x, 2)',
    '  output o = conv(z, over: (t, h, w), kernel: (t: 1, h: 3, w: 3), stride: (t: 1, h: 2, w: 1), padding: (t: 0, h: 1, w: 1), out: 3)',
    '  output p = conv(z, over: (h, w), kernel: 3, out: 2)',
  ].join('\n'), '', 'b = 2, c = 2, t = 2, h = 5, w = 4')), 'n', 2, 'c');
  assert.is(backwardFamilies(s).filter((f) => f === 'conv-backward-weight').length, 4);
  await check(s, 'sliced batches');
});

gpuTest('pool avg and max, upsample nearest and linear', async () => {
  const g = graphOf(model([
    '  z = linear(x, 3)',
    '  m = pool(z, kernel: (h: 2, w: 3), mode: "max")',
    '  a = pool(z, kernel: 2)',
    '  output o = linear(upsample(m, like: z, mode: "linear"), 2)',
    '  output p = upsample(a, factor: (t: 2, w: 2)) * 3',
    '  output q = upsample(z, factor: (h: 3), mode: "linear")',
    '  output r = upsample(m, factor: (h: 2, w: 3)) * z',
  ].join('\n'), '', 'b = 2, c = 2, t = 2, h = 4, w = 6'));
  await check(g, 'pool / upsample');
});

test.after(() => {
  const line = Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ');
  if (process.env.VDM_TEST_VERBOSE) console.log(`worst relative errors: ${line}`);
});

test.run();
