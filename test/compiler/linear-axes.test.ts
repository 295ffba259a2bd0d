// linear over several axes at once: the shape rule, the weight layout (rows row-major over the axes
// as listed) against an explicit loop, the backward against finite differences, and the errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluate, exampleInputs, liveParams } from '../../src/compiler/reference/evaluate.ts';
import { relayout, sizeIn, stridesOf } from '../../src/compiler/ir/named-tensor.ts';
import { expectGradients } from './grad-check.ts';
import { axesOf, check, codes, graphOf, model, nodeAt } from './helpers.ts';

const DIMS = 'b = 2, c = 3, t = 4, h = 2, w = 5';

test('linear(x, 6, axis: (t, c)): t and c contracted into c = 6, weight [t * c, 6], one axis keeps its attributes', () => {
  const g = graphOf(model('  y = linear(x, 6, axis: (t, c))\n  output o = linear(y, 2)', '', DIMS));
  const n = nodeAt(g, 'linear');
  assert.is(axesOf(n), 'b=2,c=6,h=2,w=5');
  assert.equal(n.params.map((p) => [p.path, p.shape]), [['linear.weight', [12, 6]], ['linear.bias', [6]]]);
  assert.equal(n.attrs, { out: 6, bias: true, init: 'default', axis: 'c', over: ['t', 'c'] });
  assert.equal(nodeAt(g, 'linear_1').attrs, { out: 2, bias: true, init: 'default', axis: 'c' });
  // the output axis is the last one listed
  assert.is(axesOf(nodeAt(graphOf(model('  output o = linear(x, 7, axis: (c, w))', '', DIMS)), 'linear')), 'b=2,t=4,h=2,w=7');
});

test('float64: y[b, o, h, w] = sum over (t, c) of x[b, c, t, h, w] W[t * C + c, o] + bias[o]', () => {
  const g = graphOf(model('  output o = linear(x, 6, axis: (t, c))', '', DIMS));
  const inputs = exampleInputs(g, 5);
  const params = liveParams(g, 5);
  const y = evaluate(g, inputs, params).outputs.get('o')!;
  const x = relayout(inputs.get('x')!, [['b', 2], ['c', 3], ['t', 4], ['h', 2], ['w', 5]]);
  const W = params.get('linear.weight')!;
  const B = params.get('linear.bias')!;
  const ys = stridesOf(y.axes);
  const at = (idx: Record<string, number>) => y.axes.reduce((o, [n], i) => o + idx[n] * ys[i], 0);
  let worst = 0;
  for (let b = 0; b < 2; b++) for (let o = 0; o < 6; o++) for (let h = 0; h < 2; h++) for (let w = 0; w < 5; w++) {
    let acc = B[o];
    for (let t = 0; t < 4; t++) for (let c = 0; c < 3; c++) acc += x.data[(((b * 3 + c) * 4 + t) * 2 + h) * 5 + w] * W[(t * 3 + c) * 6 + o];
    worst = Math.max(worst, Math.abs(acc - y.data[at({ b, c: o, h, w })]));
  }
  assert.ok(worst < 1e-12, `worst ${worst}`);
  assert.is(sizeIn(y.axes, 'c'), 6);
});

test('backward over (t, c), (h, c) without bias and (t, h) against finite differences', () => {
  expectGradients(graphOf(model([
    '  y = linear(x, 6, axis: (t, c))',
    '  z = linear(tanh(y), 3, axis: (h, c), bias: false)',
    '  output o = z * linear(x, 3, axis: (t, h))',
  ].join('\n'), '', DIMS)), 'linear over several axes', 1e-6, { samples: 40 });
});

test('errors: an axis x lacks (VDM020), the same axis twice (VDM022), no axis (VDM015)', () => {
  assert.equal(codes(check(model('  output o = linear(x, 6, axis: (q, c))', '', DIMS))), ['VDM020']);
  assert.equal(codes(check(model('  output o = linear(x, 6, axis: (c, c))', '', DIMS))), ['VDM022']);
  assert.equal(codes(check(model('  output o = linear(x, 6, axis: ())', '', DIMS))), ['VDM015']);
});

test.run();
