// Reverse-mode gradients in float64 against central finite differences: elementwise functions,
// operators with broadcasting and numbers on either side, linear layers, and the checker itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backward } from '../../src/compiler/reference/autodiff.ts';
import { evaluate, exampleInputs } from '../../src/compiler/reference/evaluate.ts';
import { sumTo, tensor } from '../../src/compiler/ir/named-tensor.ts';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import { expectGradients, gradientCheck } from './grad-check.ts';
import { graphOf, model } from './helpers.ts';

const SMALL = 'b = 2, c = 3, t = 2, h = 2, w = 3';

test('sumTo sums the axes a broadcast added, by name', () => {
  const t = tensor([['a', 2], ['b', 3]], [1, 2, 3, 4, 5, 6]);
  assert.equal(Array.from(sumTo(t, [['b', 3]]).data), [5, 7, 9]);
  assert.equal(Array.from(sumTo(t, [['a', 2]]).data), [6, 15]);
  assert.equal(Array.from(sumTo(t, [['b', 3], ['a', 2]]).data), [1, 4, 2, 5, 3, 6]);
  assert.throws(() => sumTo(t, [['c', 2]]), /no axis 'c'/);
});

test('every elementwise function, and the operators with numbers on either side', () => {
  const g = graphOf(model([
    '  p = abs(x) + 0.5',
    '  a = silu(x) + gelu(x) + gelu_tanh(x) + relu(x) + sigmoid(x) + tanh(x)',
    '  b = exp(-x) + sqrt(p) - 2 / p + p / 3 - (1 - x) * 4',
    '  output o = a * b',
  ].join('\n'), '', SMALL));
  expectGradients(g, 'elementwise', 1e-6, { samples: 40 });
});

test('operators broadcast by name: the gradient of the smaller operand sums over the axes it lacks', () => {
  const g = graphOf(model([
    '  input s : timestep[b]',
    '  v = s * 0.01',                              // [b]
    '  y = linear(x, 2, axis: w)',                 // [b, c, t, h, w=2]
    '  output o = x * v + v / (x * x + 1) - v + linear(y, 3, axis: w)',
  ].join('\n'), '', SMALL));
  expectGradients(g, 'broadcast', 1e-6, { samples: 30 });
});

test('linear along c and along t, with and without bias, chained', () => {
  const g = graphOf(model([
    '  y = linear(x, 4)',
    '  z = linear(y, 3, axis: t, bias: false)',
    '  output o = tanh(linear(z, 2))',
  ].join('\n'), '', SMALL));
  expectGradients(g, 'linear', 1e-6, { samples: 30 });
});

test('the check fails when a backward rule is wrong', () => {
  const g = graphOf(model('  output o = silu(x) * 2', '', SMALL));
  const silu = PRIMITIVES.get('silu')! as { derivative?: (x: number, y: number) => number };
  const right = silu.derivative;
  try {
    silu.derivative = (x, y) => right!(x, y) * 1.001;
    assert.ok(gradientCheck(g).worst > 1e-4);
  } finally {
    silu.derivative = right;
  }
  assert.ok(gradientCheck(g).worst < 1e-6);
});

test('a primitive without a backward rule is an error that names it', () => {
  const g = graphOf(model('  output o = flip(x, t)', '', SMALL));
  const fake = { ...g, nodes: g.nodes.map((n) => (n.op === 'flip' ? { ...n, op: 'silu_nope' } : n)) };
  const ev = evaluate(g, exampleInputs(g), new Map());
  assert.throws(() => backward(fake, ev, new Map(), new Map([['o', ev.outputs.get('o')!]])), /'silu_nope' .* no backward rule/);
});

test.run();
