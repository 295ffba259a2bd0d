// Backward rules of the normalisations, mean, the layout primitives (split, concat, expand, slice,
// flip), the embeddings (sinusoidal, sincos, embed), the GRU and param, against central finite
// differences: every variant, in unusual axis orders, with h != w.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import type { VjpCall, VjpResult } from '../../src/compiler/primitives/types.ts';
import { expectGradients, gradientCheck } from './grad-check.ts';
import { graphOf, model } from './helpers.ts';

const SMALL = 'b = 2, c = 4, t = 3, h = 2, w = 3';
const WIDE = 'b = 2, c = 4, t = 2, h = 3, w = 4';
const check = (body: string, what: string, dims = SMALL, head = '') =>
  expectGradients(graphOf(model(body, head, dims)), what, 1e-6, { samples: 40 });

// ------------------------------------------------------------------ layernorm, rmsnorm, groupnorm

test('layernorm along c and along t, affine and not', () => {
  check([
    '  y = linear(x, 4)',
    '  output o = layernorm(y) * x + layernorm(y, axis: t) * tanh(x) + layernorm(x, affine: false, eps: 0.01, axis: w) * y',
  ].join('\n'), 'layernorm');
});

test('rmsnorm along c and along w, affine and not', () => {
  check([
    '  y = linear(x, 4)',
    '  output o = rmsnorm(y) * x + rmsnorm(y, axis: w) * tanh(x) + rmsnorm(x, affine: false, eps: 0.5, axis: h) * y',
  ].join('\n'), 'rmsnorm');
});

test('groupnorm over (t, h, w) by default, over (h, w), over (w, t), affine and not', () => {
  check([
    '  y = linear(x, 4)',
    '  a = groupnorm(y, groups: 2) * x',
    '  b2 = groupnorm(y, groups: 4, over: (h, w), eps: 0.01) * tanh(x)',
    '  output o = a + b2 + groupnorm(x, groups: 1, over: (w, t), affine: false) * y',
  ].join('\n'), 'groupnorm', WIDE);
});

// ------------------------------------------------------------------ mean and layout

test('mean over (h, w), over t and over (w, b)', () => {
  check([
    '  y = linear(x, 4)',
    '  output o = tanh(mean(y * x, over: (h, w))) + mean(tanh(y), over: t) * mean(y, over: (w, b))',
  ].join('\n'), 'mean', WIDE);
});

test('split along w (every part used) and along c (one part unused)', () => {
  check([
    '  y = linear(x, 4)',
    '  (p0, p1) = split(y, 2, axis: w)',
    '  (q0, q1, q2, q3) = split(tanh(y), 4)',
    '  output o = p0 * tanh(p1) + p1',
    '  output p = q0 * q3 + q2',
  ].join('\n'), 'split', WIDE);
});

test('concat along t (three inputs, one used twice) and along c', () => {
  check([
    '  y = linear(x, 4)',
    '  a = concat(x, tanh(y), x * y, axis: t)',
    '  output o = tanh(a) * concat(y, y, y, axis: t)',
    '  output p = concat(y, x) * concat(x, tanh(y))',
  ].join('\n'), 'concat', WIDE);
});

test('flatten over (t, h, w) and (w, b), unflatten back and into other axes', () => {
  check([
    '  y = linear(x, 4)',
    '  f = flatten(tanh(y) * x, over: (t, h, w), into: n)',
    '  output o = tanh(f) * flatten(y, over: (t, h, w), into: n) + mean(flatten(y * y, over: (w, b), into: m), over: m)',
    '  output p = unflatten(f * f, n, sizes: (t: 2, h: 3, w: 4)) * y + tanh(unflatten(f, n, sizes: (p: 6, q: 4)))',
  ].join('\n'), 'flatten', WIDE);
});

test('expand over t and with a new axis', () => {
  check([
    '  y = linear(x, 4)',
    '  m = mean(y, over: t)',
    '  output o = tanh(expand(m, sizes: (t: 2))) * x + expand(tanh(m * x), sizes: (q: 3))',
  ].join('\n'), 'expand', WIDE);
});

test('slice along h and along w, flip along h and along t', () => {
  check([
    '  y = linear(x, 4)',
    '  output o = tanh(slice(y, h, 1, 3)) * slice(x, h, 0, 2)',
    '  output p = slice(y * y, w, 1, 3)',
  ].join('\n'), 'slice', WIDE);
  check([
    '  y = linear(x, 4)',
    '  output o = tanh(flip(y, h)) * x + flip(flip(y * y, t), h) * y',
  ].join('\n'), 'flip', WIDE);
});

// ------------------------------------------------------------------ embeddings

test('sinusoidal of a timestep input, of a scalar input, and of a mean over [b, t]', () => {
  check([
    '  input s : timestep[b]',
    '  input k : scalar[b](range: (0.25, 4))',
    '  e = sinusoidal(s, dim: 6) * sinusoidal(k, dim: 6, max_period: 100)',
    '  m = sinusoidal(3 * mean(linear(x, 2), over: (c, h, w)), dim: 4, max_period: 50)',
    '  output o = e + linear(x, 6, axis: c) * e',
    '  output p = m * mean(x, over: (h, w))',
  ].join('\n'), 'sinusoidal', WIDE);
});

test('sincos is a constant table: gradients pass around it', () => {
  check([
    '  y = linear(x, 4)',
    '  output o = y * sincos(x, over: (h, w)) + x * sincos(y, over: t)',
  ].join('\n'), 'sincos', WIDE);
});

test('embed of a label input: the table gets scatter-added rows (b larger than classes)', () => {
  check([
    '  input y : label[b](classes: 5)',
    '  output o = embed(y, dim: 4) * mean(x, over: (t, h, w)) + tanh(embed(y, dim: 4))',
  ].join('\n'), 'embed', 'b = 7, c = 4, t = 2, h = 3, w = 2');
});

// ------------------------------------------------------------------ gru and param

test('gru forward and reverse over t, and over w', () => {
  for (const reverse of [false, true]) {
    check([
      '  y = linear(x, 4)',
      `  output o = gru(y, over: t, hidden: 3, reverse: ${reverse}) * mean(x, over: c)`,
    ].join('\n'), `gru reverse: ${reverse}`, 'b = 2, c = 3, t = 4, h = 1, w = 2');
  }
  check('  output o = gru(x, over: w, hidden: 2, reverse: true)', 'gru over w', 'b = 1, c = 2, t = 2, h = 2, w = 3');
});

test('param added to x, in its own axis order', () => {
  check('  output o = tanh(x + param((t: 3, c: 4))) * param(sizes: (w: 3, h: 2), init: "zeros")', 'param');
});

// ------------------------------------------------------------------ the check itself

test('the check fails when a backward rule here is wrong', () => {
  const g = graphOf(model('  output o = groupnorm(linear(x, 4), groups: 2) * x', '', SMALL));
  const gn = PRIMITIVES.get('groupnorm')! as { vjp?: (call: VjpCall) => VjpResult };
  const right = gn.vjp!;
  try {
    gn.vjp = (call) => {
      const r = right(call);
      const dx = r.inputs[0]!;
      return { ...r, inputs: [{ axes: dx.axes, data: dx.data.map((v) => v * 1.01) }] };
    };
    assert.ok(gradientCheck(g, { samples: 100 }).worst > 1e-4);
  } finally {
    gn.vjp = right;
  }
  assert.ok(gradientCheck(g, { samples: 100 }).worst < 1e-6);
});

test.run();
