// Broadcasting of size-1 axes by name: the shape rule, the float64 value against an explicit
// expand, the backward rule against finite differences, and VDM021 for any other pair of sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluate, exampleInputs, liveParams } from '../../src/compiler/reference/evaluate.ts';
import { relayout } from '../../src/compiler/ir/named-tensor.ts';
import { expectGradients } from './grad-check.ts';
import { axesOf, check, codes, graphOf, model, nodeAt, places } from './helpers.ts';

const DIMS = 'b = 2, c = 3, t = 4, h = 3, w = 2';

test('a size-1 axis on either side takes the other side\'s size; the left operand\'s axis order stays', () => {
  const g = graphOf(model([
    '  first = slice(x, t, 0, 1)',
    '  g = pool(x, kernel: (h: 3, w: 2))',
    '  y = first - x',
    '  z = g * first',
    '  output o = y + z',
  ].join('\n'), '', DIMS));
  assert.is(axesOf(nodeAt(g, 'sub')), 'b=2,c=3,t=4,h=3,w=2');
  assert.is(axesOf(nodeAt(g, 'mul')), 'b=2,c=3,t=4,h=3,w=2');
});

test('size 1 against size 1 stays 1; against a missing axis it is kept', () => {
  const g = graphOf(model('  p = pool(x, kernel: (t: 4))\n  q = p * mean(x, over: t)\n  output o = q + p', '', DIMS));
  assert.is(axesOf(nodeAt(g, 'mul')), 'b=2,c=3,t=1,h=3,w=2');
});

test('float64: x - first over t equals x minus the first frame expanded explicitly', () => {
  const g = graphOf(model([
    '  first = slice(x, t, 0, 1)',
    '  output o = x - first',
    '  output e = x - expand(mean(first, over: t), sizes: (t: 4))',
    '  p = linear(pool(x, kernel: (h: 3)), 3)',
    '  output s = p * x',
    '  output se = expand(mean(p, over: h), sizes: (h: 3)) * x',
  ].join('\n'), '', DIMS));
  const ev = evaluate(g, exampleInputs(g, 3), liveParams(g, 3));
  for (const [a, b] of [['o', 'e'], ['s', 'se']]) {
    const va = ev.outputs.get(a)!;
    const vb = relayout(ev.outputs.get(b)!, va.axes);
    assert.ok(va.data.some((v) => Math.abs(v) > 1e-3), `${a} is not all zero`);
    for (let i = 0; i < va.data.length; i++) assert.ok(Math.abs(va.data[i] - vb.data[i]) < 1e-12, `${a} vs ${b} at ${i}`);
  }
});

test('backward: the size-1 operand gets the gradient summed over the axis, on either side, against finite differences', () => {
  expectGradients(graphOf(model([
    '  first = linear(slice(x, t, 0, 1), 3)',
    '  g = linear(pool(x, kernel: (h: 3, w: 2)), 3)',
    '  output o = first * x + x / (2 + g * g) - first * g',
  ].join('\n'), '', DIMS)), 'size-1 broadcast', 1e-6, { samples: 40 });
});

test('sizes other than 1 vs n: VDM021 at the operator, naming both sizes and the size-1 rule', () => {
  const r = check(model('  p = pool(x, kernel: (t: 2))\n  y = x * p\n  output o = y', '', DIMS));
  assert.equal(codes(r), ['VDM021']);
  assert.match(r.diagnostics[0].message, /axis 't' has size 4 on the left but 2 on the right/);
  assert.match(r.diagnostics[0].hint!, /size 1 there to broadcast/);
  assert.equal(places(r), ['VDM021@6:7']);
});

test.run();
