// Shape rules, parameter shapes and MACs of the parametric primitives, against hand formulas.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { axesOf, check, codes, graphOf, model, nodeAt, paramShape, places } from './helpers.ts';

// x is [b=2, c=8, t=4, h=8, w=8]: 512 positions per channel vector... 2*4*8*8 = 512 tokens.
const TOKENS = 2 * 4 * 8 * 8;

test('linear: axis size -> out; weight [in, out], bias [out]; MACs = numel(x)/in * in * out', () => {
  const g = graphOf(model('  y = linear(x, 16)\n  output o = y'));
  const n = nodeAt(g, 'linear');
  assert.is(axesOf(n), 'b=2,c=16,t=4,h=8,w=8');
  assert.equal(paramShape(g, 'linear.weight'), [8, 16]);
  assert.equal(paramShape(g, 'linear.bias'), [16]);
  assert.is(n.macs, TOKENS * 8 * 16);
  assert.is(n.activationBytes, TOKENS * 16 * 4);
});

test('linear along another axis, without bias, with an init', () => {
  const g = graphOf(model('  y = linear(x, 3, axis: t, bias: false, init: "zeros")\n  output o = y'));
  const n = nodeAt(g, 'linear');
  assert.is(axesOf(n), 'b=2,c=8,t=3,h=8,w=8');
  assert.equal(n.params.map((p) => [p.path, p.shape, p.init]), [['linear.weight', [4, 3], 'zeros']]);
  assert.is(n.macs, (2 * 8 * 4 * 8 * 8 / 4) * 4 * 3);
});

test('conv 3x3 "same": sizes kept; weight [out, c/groups, k...]; MACs = numel(out) * c/groups * prod(k)', () => {
  const g = graphOf(model('  y = conv(x, over: (h, w), kernel: 3, out: 16)\n  output o = y'));
  const n = nodeAt(g, 'conv');
  assert.is(axesOf(n), 'b=2,c=16,t=4,h=8,w=8');
  assert.equal(paramShape(g, 'conv.weight'), [16, 8, 3, 3]);
  assert.equal(paramShape(g, 'conv.bias'), [16]);
  assert.is(n.macs, 2 * 16 * 4 * 8 * 8 * 8 * 9);
  assert.equal(n.attrs.padding, { h: 1, w: 1 });
});

test('conv: stride, valid padding, dilation, groups, per-axis kernel (3-D)', () => {
  let g = graphOf(model('  y = conv(x, over: (h, w), kernel: 2, stride: 2, padding: "valid", bias: false)\n  output o = y'));
  let n = nodeAt(g, 'conv');
  assert.is(axesOf(n), 'b=2,c=8,t=4,h=4,w=4');
  assert.is(n.params.length, 1);
  g = graphOf(model('  y = conv(x, over: (t, h, w), kernel: (t: 3, h: 1, w: 1), groups: 8)\n  output o = y'));
  n = nodeAt(g, 'conv');
  assert.equal(paramShape(g, 'conv.weight'), [8, 1, 3, 1, 1]);
  assert.is(n.macs, 2 * 8 * 4 * 8 * 8 * 1 * 3);
  g = graphOf(model('  y = conv(x, over: (h, w), kernel: 3, dilation: 2, padding: 0)\n  output o = y'));
  // floor((8 + 0 - 2*2 - 1)/1) + 1 = 4
  assert.is(axesOf(nodeAt(g, 'conv')), 'b=2,c=8,t=4,h=4,w=4');
});

test('conv and pool keep h and w apart on a non-square grid (per-axis kernel and stride)', () => {
  const g = graphOf(`model M {
  dims b = 2, c = 8, t = 4, h = 8, w = 12
  input x : video[b, c, t, h, w]
  y = conv(x, over: (h, w), kernel: (h: 3, w: 1), stride: (h: 2, w: 3), padding: "valid")
  output o = y
  output q = pool(x, kernel: (h: 2, w: 4))
}`);
  assert.is(axesOf(nodeAt(g, 'conv')), 'b=2,c=8,t=4,h=3,w=4'); // (8 - 3) / 2 + 1, (12 - 1) / 3 + 1
  assert.equal(paramShape(g, 'conv.weight'), [8, 8, 3, 1]);
  assert.is(nodeAt(g, 'conv').macs, 2 * 8 * 4 * 3 * 4 * 8 * 3);
  assert.is(axesOf(nodeAt(g, 'pool')), 'b=2,c=8,t=4,h=4,w=3');
});

test('conv errors: even kernel with "same" VDM034, groups VDM030, output too small VDM034, axis missing VDM020', () => {
  assert.equal(codes(check(model('  y = conv(x, over: (h, w), kernel: 2)\n  output o = y'))), ['VDM034']);
  assert.equal(codes(check(model('  y = conv(x, over: (h, w), kernel: 3, groups: 3)\n  output o = y'))), ['VDM030']);
  assert.equal(codes(check(model('  y = conv(x, over: (h, w), kernel: 9, padding: "valid")\n  output o = y'))), ['VDM034']);
  assert.equal(codes(check(model('  y = conv(x, over: (h, q), kernel: 3)\n  output o = y'))), ['VDM020']);
});

test('attention (self): same shape; qkv [d, 3d], proj [d, d]; MACs = 4 N d^2 + 2 N^2 d per group', () => {
  const g = graphOf(model('  y = attention(x, over: (h, w), heads: 2)\n  output o = y'));
  const n = nodeAt(g, 'attention');
  assert.is(axesOf(n), axesOf(nodeAt(g, 'x')));
  assert.equal(paramShape(g, 'attention.qkv.weight'), [8, 24]);
  assert.equal(paramShape(g, 'attention.qkv.bias'), [24]);
  assert.equal(paramShape(g, 'attention.proj.weight'), [8, 8]);
  const groups = 2 * 4;
  const N = 64;
  const d = 8;
  assert.is(n.macs, groups * (N * d * 3 * d + 2 * N * N * d + N * d * d));
});

test('attention (cross): q [d, d], kv [dc, 2d]; key tokens from the context', () => {
  const g = graphOf(`model M {
  dims b = 2, c = 8, t = 4, h = 8, w = 8
  input x : video[b, c, t, h, w]
  input txt : text[b, l = 5, c = 6]
  y = attention(x, over: (h, w), heads: 2, context: txt)
  output o = y
}`);
  const n = nodeAt(g, 'attention');
  assert.equal(paramShape(g, 'attention.q.weight'), [8, 8]);
  assert.equal(paramShape(g, 'attention.kv.weight'), [6, 16]);
  assert.equal(paramShape(g, 'attention.kv.bias'), [16]);
  assert.is(n.inputs.length, 2);
  const Nq = TOKENS;
  assert.is(n.macs, Nq * 8 * 8 + 2 * 5 * 6 * 16 + 2 * Nq * 5 * 8 + Nq * 8 * 8);
});

test('attention (windowed, shifted, relative bias): groups of windows; rel_bias [prod(2w-1), heads]', () => {
  const g = graphOf(model('  y = attention(x, over: (t, h, w), heads: 4, window: (t: 2, h: 4, w: 4), shift: (t: 1, h: 2, w: 2), rel_bias: true)\n  output o = y'));
  const n = nodeAt(g, 'attention');
  assert.equal(paramShape(g, 'attention.rel_bias'), [3 * 7 * 7, 4]);
  const perWindow = 2 * 4 * 4;
  assert.is(n.macs, TOKENS * 8 * 24 + 2 * TOKENS * perWindow * 8 + TOKENS * 64);
  assert.equal(n.attrs.window, { t: 2, h: 4, w: 4 });
});

test('attention: a window larger than the axis is clamped, with no shift there', () => {
  const g = graphOf(model('  y = attention(x, over: (t, h), window: (t: 8, h: 4), shift: (t: 3, h: 2))\n  output o = y'));
  const n = nodeAt(g, 'attention');
  assert.equal(n.attrs.window, { t: 4, h: 4 });
  assert.equal(n.attrs.shift, { t: 0, h: 2 });
});

test('attention key_mask: accepted axes (key tokens, batch axes of x, b broadcast), and VDM044 with hints', () => {
  const txt = (body: string) => model(`  input txt : text[b, l=6, c=8]\n  input ok : text[b, l=6, c=1]\n  input y : label[b](classes: 4)\n${body}`);
  const ok = graphOf(txt('  output o = attention(x, over: (h, w), context: txt, key_mask: mean(ok, over: c)) as a'));
  const n = nodeAt(ok, 'a', 'attention');
  assert.is(n.attrs.key_mask, true);
  assert.is(n.inputs.length, 3);
  // self-attention: the `over` axes plus any batch axes of x (t here); b absent is broadcast
  for (const m of ['mean(x, over: c)', 'mean(x, over: (b, c, t))', 'mean(x, over: (b, c))']) {
    assert.equal(codes(check(model(`  output o = attention(x, over: (h, w), key_mask: ${m})`))), [], m);
  }
  const cases: [string, RegExp, RegExp][] = [
    ['attention(x, over: (h, w), context: txt, key_mask: ok)', /channel axis c/, /mean\(m, over: c\)/],
    ['attention(x, over: (h, w), context: txt, key_mask: mean(x, over: c))', /axis 'h' is neither a key token axis \(l\)/, /key token axes/],
    ['attention(x, over: (h, w), key_mask: mean(x, over: (c, w)))', /lacks the key token axis 'w'/, /every key token axis \(h, w\)/],
    ['attention(x, over: (h, w), key_mask: slice(mean(x, over: c), h, 0, 4))', /axis 'h' is 4, but 8 in the keys/, /one value per key: h=8/],
    ['attention(x, over: (h, w), window: (h: 4, w: 4), key_mask: mean(x, over: c))', /cannot be combined with windows/, /drop key_mask/],
  ];
  for (const [call, msg, hint] of cases) {
    const r = check(txt(`  output o = ${call}`));
    assert.equal(codes(r), ['VDM044'], call);
    assert.match(r.diagnostics[0].message, msg);
    assert.match(r.diagnostics[0].hint ?? '', hint);
  }
  // integer ids are not a mask
  const ids = check(txt('  output o = attention(x, over: (h, w), context: txt, key_mask: expand(y, sizes: (l: 6)))'));
  assert.equal(codes(ids), ['VDM044']);
  assert.match(ids.diagnostics[0].message, /float tensor/);
});

test('attention errors: heads VDM030, window VDM032, shift VDM032, channel in over VDM017', () => {
  assert.equal(codes(check(model('  y = attention(x, over: (h, w), heads: 3)\n  output o = y'))), ['VDM030']);
  assert.equal(codes(check(model('  y = attention(x, over: (h, w), window: (h: 3, w: 4))\n  output o = y'))), ['VDM032']);
  assert.equal(codes(check(model('  y = attention(x, over: (h, w), window: (h: 4, w: 4), shift: (h: 4))\n  output o = y'))), ['VDM032']);
  assert.equal(codes(check(model('  y = attention(x, over: (h, w), shift: 1)\n  output o = y'))), ['VDM032']);
  assert.equal(codes(check(model('  y = attention(x, over: (c, w))\n  output o = y'))), ['VDM017']);
  const r = check(model('  y = attention(x, over: (h, w), heads: 3)\n  output o = y'));
  assert.match(r.diagnostics[0].message, /heads=3 does not divide c=8/);
  assert.equal(places(r), ['VDM030@5:34']);
});

test('gru: c -> hidden; four weights; MACs = numel(x)/c * 3H * (c + H)', () => {
  const g = graphOf(model('  y = gru(x, over: t, hidden: 6, reverse: true)\n  output o = y'));
  const n = nodeAt(g, 'gru');
  assert.is(axesOf(n), 'b=2,c=6,t=4,h=8,w=8');
  assert.equal(n.params.map((p) => [p.path, p.shape]), [
    ['gru.weight_ih', [18, 8]], ['gru.weight_hh', [18, 6]], ['gru.bias_ih', [18]], ['gru.bias_hh', [18]],
  ]);
  assert.is(n.macs, TOKENS * 18 * (8 + 6));
});

test('embed: ids + c=dim; table [classes, dim]; label inputs give classes (+1 with a null class)', () => {
  const g = graphOf(`model M {
  dims b = 3
  input y : label[b](classes: 10, null: true)
  input z : label[b](classes: 7)
  e = embed(y, dim: 4) + embed(z, dim: 4) + embed(z, classes: 20, dim: 4)
  output o = e
}`);
  assert.equal(paramShape(g, 'embed.weight'), [11, 4]);
  assert.equal(paramShape(g, 'embed_1.weight'), [7, 4]);
  assert.equal(paramShape(g, 'embed_2.weight'), [20, 4]);
  assert.is(axesOf(nodeAt(g, 'embed')), 'b=3,c=4');
  assert.equal(codes(check(model('  e = embed(x, classes: 3, dim: 4)\n  output o = e'))), ['VDM017']);
});

test('param: a learned tensor with the given axes', () => {
  const g = graphOf(model('  p = param((t: 4, c: 8), init: "zeros") as pos\n  output o = x + p'));
  const n = nodeAt(g, 'pos');
  assert.is(axesOf(n), 't=4,c=8');
  assert.equal(n.params.map((p) => [p.path, p.shape, p.init]), [['pos.weight', [4, 8], 'zeros']]);
});

test.run();
