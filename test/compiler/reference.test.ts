// The reference evaluation core: named tensors, elementwise and linear references, initialisation
// and example inputs, and whole-graph evaluation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluate, exampleInputs, initParams } from '../../src/compiler/reference/evaluate.ts';
import type { AxisPair } from '../../src/compiler/ir/graph.ts';
import { alongAxis, relayout, tensor, zipWith, type NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { graphOf, model, nodeAt } from './helpers.ts';

const axes = (spec: Record<string, number>): AxisPair[] => Object.entries(spec);
const iota = (a: AxisPair[]) => tensor(a, Array.from({ length: a.reduce((n, [, s]) => n * s, 1) }, (_, i) => i));

/** Value of `t` at an index given by axis name, whatever the layout. */
function at(t: NamedTensor, idx: Record<string, number>): number {
  let flat = 0;
  for (const [name, size] of t.axes) flat = flat * size + idx[name];
  return t.data[flat];
}

test('relayout reorders by name and broadcasts missing axes', () => {
  const x = iota(axes({ a: 2, b: 3 }));
  const y = relayout(x, axes({ b: 3, c: 2, a: 2 }));
  for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) {
    assert.is(at(y, { a, b, c }), a * 3 + b);
  }
  assert.throws(() => relayout(x, axes({ a: 3, b: 3 })), /axis 'a' is 2, expected 3/);
});

test('zipWith broadcasts by name; alongAxis maps vectors along one axis', () => {
  const x = iota(axes({ a: 2, b: 3 }));
  const y = iota(axes({ b: 3 }));
  const s = zipWith(axes({ b: 3, a: 2 }), [x, y], (p, q) => p * 10 + q);
  assert.is(at(s, { a: 1, b: 2 }), 52);
  const sums = alongAxis(relayout(x, axes({ b: 3, a: 2 })), 'b', 1, (src, dst) => { dst[0] = src.reduce((p, q) => p + q, 0); });
  assert.equal(sums.axes, [['b', 1], ['a', 2]]);
  assert.equal(Array.from(sums.data), [0 + 1 + 2, 3 + 4 + 5]);
});

test('linear contracts its axis with weight [in, out] and adds the bias, in any input layout', () => {
  const g = graphOf(model('  y = linear(x, 3, axis: t)\n  output o = y', '', 'b = 1, c = 2, t = 4, h = 1, w = 5'));
  const params = initParams(g, 7);
  const w = params.get('linear.weight')!;
  const bias = params.get('linear.bias')!;
  bias.forEach((_, i) => { bias[i] = i - 1; }); // zeros by default: make it count
  const x = exampleInputs(g, 3).get('x')!;
  const y = evaluate(g, new Map([['x', x]]), params).outputs.get('o')!;
  assert.equal(y.axes, nodeAt(g, 'linear').axes);
  for (let c = 0; c < 2; c++) for (let wi = 0; wi < 5; wi++) for (let o = 0; o < 3; o++) {
    let want = bias[o];
    for (let t = 0; t < 4; t++) want += at(x, { b: 0, c, t, h: 0, w: wi }) * w[t * 3 + o];
    assert.ok(Math.abs(at(y, { b: 0, c, t: o, h: 0, w: wi }) - want) < 1e-12);
  }
  // The same input in another layout gives the same values.
  const permuted = relayout(x, axes({ w: 5, t: 4, b: 1, h: 1, c: 2 }));
  assert.equal(Array.from(evaluate(g, new Map([['x', permuted]]), params).outputs.get('o')!.data), Array.from(y.data));
});

test('float32 initialisation: the same draws as float64, rounded, for every init kind', () => {
  const inits = ['default', 'xavier_uniform', 'normal', 'scaled_normal', 'zeros', 'ones'];
  const body = [...inits.map((init, i) => `  p${i} = param(sizes: (n: ${3 + i}, c: 5), init: "${init}")`),
    '  y = linear(x, 3, axis: t)', `  output o = y${inits.map((_, i) => ` + mean(p${i}, over: n)`).join('')}`].join('\n');
  const g = graphOf(model(body, '', 'b = 1, c = 5, t = 4, h = 1, w = 1'));
  const p64 = initParams(g, 11), p32 = initParams(g, 11, true);
  assert.ok(p64.size >= inits.length + 2, [...p64.keys()].join(', '));
  assert.equal([...p32.keys()], [...p64.keys()]);
  for (const [k, v] of p64) {
    const v32 = p32.get(k)!;
    assert.ok(v32 instanceof Float32Array, k);
    assert.equal(Array.from(v32), Array.from(Float32Array.from(v)), k);
  }
});

test('operators broadcast by name, numbers keep their side, functions apply elementwise', () => {
  const g = graphOf(model([
    '  a = 2 - x',
    '  d = x / 4',
    '  e = -silu(x) + exp(x) * gelu(x)',
    '  output o = a + d + e',
  ].join('\n'), '', 'b = 1, c = 2, t = 2, h = 3, w = 2'));
  const x = exampleInputs(g, 5).get('x')!;
  const o = evaluate(g, new Map([['x', x]]), new Map()).outputs.get('o')!;
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const Phi = (v: number) => { // the normal CDF by quadrature of the density (error ~1e-7): independent of erf()
    let s = 0;
    const n = 20000, lo = -12;
    for (let i = 0; i < n; i++) { const u = lo + ((v - lo) * (i + 0.5)) / n; s += Math.exp(-u * u / 2); }
    return (s * (v - lo)) / n / Math.sqrt(2 * Math.PI);
  };
  x.data.forEach((v, i) => {
    const want = (2 - v) + v / 4 + (-silu(v) + Math.exp(v) * v * Phi(v));
    assert.ok(Math.abs(o.data[i] - want) < 1e-6, `${o.data[i]} vs ${want}`);
  });
  // tensor (op) tensor over different axes: [b, c] + [b, c, t, h, w]
  const g2 = graphOf(model('  y = linear(x, 2)\n  m = y + x\n  output o = m', '', 'b = 1, c = 2, t = 1, h = 1, w = 3'));
  const r = evaluate(g2, exampleInputs(g2), initParams(g2));
  const [yv, xv] = [r.values[nodeAt(g2, 'linear').id], r.values[0]];
  const sum = r.outputs.get('o')!;
  for (let w = 0; w < 3; w++) for (let c = 0; c < 2; c++) {
    const idx = { b: 0, c, t: 0, h: 0, w };
    assert.is(at(sum, idx), at(yv, idx) + at(xv, idx));
  }
});

test('initialisation follows each init rule, reproducibly', () => {
  const g = graphOf(model([
    '  input yl : label[b](classes: 50)',
    '  y = linear(x, 400, axis: c)',
    '  z = linear(y, 300, init: "xavier_uniform")',
    '  e = embed(yl, classes: 50, dim: 40)',
    '  output o = z',
  ].join('\n'), '', 'b = 1, c = 100, t = 1, h = 1, w = 1'));
  const p = initParams(g, 11);
  const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const std = (a: Float64Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  const w1 = p.get('linear.weight')!;
  assert.ok(maxAbs(w1) <= 1 / Math.sqrt(100) && maxAbs(w1) > 0.98 / Math.sqrt(100), 'default: uniform in ±1/sqrt(fan_in)');
  assert.ok(Math.abs(std(w1) - 0.1 / Math.sqrt(3)) < 0.002, `default: std ${std(w1)}`);
  const bound = Math.sqrt(6 / (400 + 300));
  const w2 = p.get('linear_1.weight')!;
  assert.ok(maxAbs(w2) <= bound && maxAbs(w2) > 0.98 * bound, 'xavier_uniform bound');
  const table = p.get('embed.weight')!;
  assert.ok(Math.abs(std(table) - 0.02) < 0.002, `normal: std ${std(table)}`);
  assert.ok([...p.entries()].filter(([k]) => k.endsWith('bias')).every(([, v]) => v.every((x) => x === 0)), 'biases start at zero');
  const again = initParams(g, 11);
  assert.equal([...again.keys()], [...p.keys()]);
  assert.equal(Array.from(again.get('linear.weight')!), Array.from(w1));
  assert.not.equal(Array.from(initParams(g, 12).get('linear.weight')!.slice(0, 4)), Array.from(w1.slice(0, 4)));
});

test('example inputs: steps of the process, classes without the null class, scalars in range', () => {
  const g = graphOf([
    'model M {',
    '  dims b = 64, c = 1, t = 1, h = 1, w = 1',
    '  input x : video[b, c, t, h, w]',
    '  input s : timestep[b]',
    '  input y : label[b](classes: 3, null: true)',
    '  input k : scalar[b](range: (0.25, 4))',
    '  output o = x',
    '}',
  ].join('\n'));
  const inputs = exampleInputs(g, 2);
  const s = inputs.get('s')!.data, y = inputs.get('y')!.data, k = inputs.get('k')!.data;
  assert.ok(s.every((v) => Number.isInteger(v) && v >= 0 && v < 1000));
  assert.ok(y.every((v) => Number.isInteger(v) && v >= 0 && v < 3));
  assert.ok(new Set(y).size === 3, 'every class appears in 64 draws');
  assert.ok(k.every((v) => v >= 0.25 && v <= 4));
  const x = inputs.get('x')!.data;
  assert.ok(Math.abs(x.reduce((a, v) => a + v, 0) / x.length) < 0.5 && x.some((v) => v < 0));
});

test('a primitive without a reference is an error that names it, not a wrong value', () => {
  const g = graphOf(model('  y = flip(x, t)\n  output o = y'));
  const node = g.nodes.find((n) => n.op === 'flip')!;
  const fake = { ...g, nodes: g.nodes.map((n) => (n === node ? { ...n, op: 'no_such_op' } : n)) };
  assert.throws(() => evaluate(fake, exampleInputs(g), new Map()), /no primitive 'no_such_op'/);
});

test.run();
