// Shape rules of the non-parametric (or norm) primitives and their errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { axesOf, check, codes, graphOf, model as modelOf, nodeAt, paramShape } from './helpers.ts';

// h and w differ, so a rule that mixes the two up changes a shape below.
const model = (body: string) => modelOf(body, '', 'b = 2, c = 8, t = 4, h = 8, w = 16');
const out = (expr: string) => model(`  y = ${expr}\n  output o = y`);
const shape = (expr: string, path: string) => axesOf(nodeAt(graphOf(out(expr)), path));
const X = 'b=2,c=8,t=4,h=8,w=16';

test('layernorm / rmsnorm: same shape; weight (+ bias) on the axis; none without affine; no MACs', () => {
  let g = graphOf(out('layernorm(x)'));
  assert.is(axesOf(nodeAt(g, 'layernorm')), X);
  assert.equal(paramShape(g, 'layernorm.weight'), [8]);
  assert.equal(paramShape(g, 'layernorm.bias'), [8]);
  assert.is(nodeAt(g, 'layernorm').macs, 0);
  g = graphOf(out('rmsnorm(x, axis: t)'));
  assert.equal(nodeAt(g, 'rmsnorm').params.map((p) => [p.path, p.shape]), [['rmsnorm.weight', [4]]]);
  g = graphOf(out('layernorm(x, affine: false)'));
  assert.is(nodeAt(g, 'layernorm').params.length, 0);
});

test('groupnorm: groups must divide c (VDM030); over defaults to all axes but b and c', () => {
  const g = graphOf(out('groupnorm(x, groups: 4)'));
  const n = nodeAt(g, 'groupnorm');
  assert.equal(n.attrs.over, ['t', 'h', 'w']);
  assert.equal(paramShape(g, 'groupnorm.bias'), [8]);
  assert.equal(codes(check(out('groupnorm(x)'))), ['VDM030']);
  assert.equal(nodeAt(graphOf(out('groupnorm(x, groups: 2, over: (h, w))')), 'groupnorm').attrs.over, ['h', 'w']);
});

test('pool: n -> n/k, must divide (VDM033); an integer applies to all axes but b and c', () => {
  assert.is(shape('pool(x, kernel: (h: 4, w: 2), mode: "max")', 'pool'), 'b=2,c=8,t=4,h=2,w=8');
  assert.is(shape('pool(x, kernel: 2)', 'pool'), 'b=2,c=8,t=2,h=4,w=8');
  assert.equal(codes(check(out('pool(x, kernel: (h: 3))'))), ['VDM033']);
  assert.equal(codes(check(out('pool(x, kernel: (h: 2), mode: "median")'))), ['VDM017']);
});

test('upsample: by factor, or like another tensor (VDM033 when not a whole factor)', () => {
  assert.is(shape('upsample(x, factor: (h: 2, w: 4))', 'upsample'), 'b=2,c=8,t=4,h=16,w=64');
  const g = graphOf(model('  s = pool(x, kernel: (h: 2, w: 2))\n  y = upsample(s, like: x, mode: "linear")\n  output o = y'));
  assert.is(axesOf(nodeAt(g, 'upsample')), X);
  assert.equal(codes(check(model('  s = pool(x, kernel: (h: 8))\n  y = upsample(x, like: s)\n  output o = y'))), ['VDM033']);
  assert.equal(codes(check(out('upsample(x)'))), ['VDM015']);
});

test('mean removes axes', () => {
  assert.is(shape('mean(x, over: (h, w))', 'mean'), 'b=2,c=8,t=4');
  assert.equal(codes(check(out('mean(x, over: q)'))), ['VDM020']);
});

test('split: a tuple of n equal parts (VDM030 when not dividing); destructuring count VDM018', () => {
  const g = graphOf(model('  (a, b2) = split(x, 2, axis: h)\n  output o = a + b2'));
  const parts = g.nodes.filter((n) => n.op === 'split');
  assert.is(parts.length, 2);
  assert.equal(parts.map((p) => p.attrs.index), [0, 1]);
  assert.is(axesOf(parts[0]), 'b=2,c=8,t=4,h=4,w=16');
  assert.equal(codes(check(model('  (a, b2) = split(x, 3)\n  output o = a'))), ['VDM030']);
  assert.equal(codes(check(model('  (a, b2) = split(x, 4)\n  output o = a'))), ['VDM018']);
});

test('concat: sizes add; other axes must match by name (VDM024); variadic or one tuple', () => {
  assert.is(shape('concat(x, x, x)', 'concat'), 'b=2,c=24,t=4,h=8,w=16');
  assert.is(shape('concat((x, x), axis: t)', 'concat'), 'b=2,c=8,t=8,h=8,w=16');
  assert.equal(codes(check(model('  p = pool(x, kernel: (h: 2))\n  y = concat(x, p)\n  output o = y'))), ['VDM024']);
  assert.equal(codes(check(model('  m = mean(x, over: w)\n  y = concat(x, m)\n  output o = y'))), ['VDM024']);
});

test('patchify / unpatchify: n -> n/p and c -> c*prod(p), and back', () => {
  assert.is(shape('patchify(x, patch: (t: 1, h: 4, w: 2))', 'patchify'), 'b=2,c=64,t=4,h=2,w=8');
  assert.is(shape('patchify(x, patch: 2)', 'patchify'), 'b=2,c=64,t=2,h=4,w=8');
  const g = graphOf(model('  p = patchify(x, patch: (h: 2, w: 2))\n  y = unpatchify(p, patch: (h: 2, w: 2))\n  output o = y'));
  assert.is(axesOf(nodeAt(g, 'unpatchify')), X);
  assert.equal(codes(check(out('unpatchify(x, patch: (h: 4, w: 4))'))), ['VDM031']);
});

test('patchify that does not divide: VDM031 with the design message and a --dim hint', () => {
  const r = check(`model M {
  dims b, c = 4, h = 31, w = 32
  input x : image[b, c, h, w]
  y = patchify(x, patch: (h: 2, w: 2))
  output o = y
}`);
  assert.equal(codes(r), ['VDM031']);
  assert.is(r.diagnostics[0].message, 'patch size h=2 does not divide h=31');
  assert.is(r.diagnostics[0].hint, 'set h to a multiple of 2 (e.g. `--dim h=32`)');
});

test('patch sizes below 1 are refused by patchify and unpatchify alike (VDM031)', () => {
  for (const expr of ['patchify(x, patch: (h: 0, w: 2))', 'unpatchify(x, patch: (t: 1, h: -2, w: -2))']) {
    const r = check(out(expr));
    assert.equal(codes(r), ['VDM031'], expr);
    assert.match(r.diagnostics[0].message, /^patch size [hw]=-?\d must be at least 1$/, expr);
  }
});

test('patchify after earlier reductions: the --dim hint accounts for them, or names no dim', () => {
  const reduced = check(`model M {
  dims b, c = 4, h = 24, w = 24
  input x : image[b, c, h, w]
  y = patchify(patchify(x, patch: (h: 4, w: 4)), patch: (h: 4, w: 1))
  output o = y
}`);
  assert.is(reduced.diagnostics[0].message, 'patch size h=4 does not divide h=6');
  assert.is(reduced.diagnostics[0].hint, 'h is the dim h=24 reduced 4x by earlier layers: set h to a multiple of 16 (e.g. `--dim h=32`)');
  const unrelated = check(`model M {
  dims b, c = 4, h = 24, w = 24
  input x : image[b, c, h, w]
  y = patchify(slice(x, h, 0, 5), patch: (h: 2, w: 1))
  output o = y
}`);
  assert.is(unrelated.diagnostics[0].hint, 'the size of h here must be a multiple of 2');
});

test('expand adds axes (VDM022 when present); slice and flip', () => {
  assert.is(shape('expand(mean(x, over: t), sizes: (t: 6))', 'expand'), 'b=2,c=8,h=8,w=16,t=6');
  assert.equal(codes(check(out('expand(x, sizes: (t: 2))'))), ['VDM022']);
  assert.is(shape('slice(x, t, 0, 1)', 'slice'), 'b=2,c=8,t=1,h=8,w=16');
  assert.equal(codes(check(out('slice(x, t, 2, 9)'))), ['VDM035']);
  assert.is(shape('flip(x, t)', 'flip'), X);
});

test('flatten merges axes where the first stood, unflatten splits one back; VDM045-VDM047', () => {
  assert.is(shape('flatten(x, over: (t, h, w), into: n)', 'flatten'), 'b=2,c=8,n=512');
  assert.is(shape('flatten(x, over: (w, b), into: n)', 'flatten'), 'n=32,c=8,t=4,h=8');
  assert.is(shape('flatten(x, over: t, into: f)', 'flatten'), 'b=2,c=8,f=4,h=8,w=16');
  assert.is(shape('unflatten(flatten(x, over: (t, h, w), into: n), n, sizes: (t: 4, h: 8, w: 16))', 'unflatten'), 'b=2,c=8,t=4,h=8,w=16');
  assert.is(shape('unflatten(x, h, sizes: (p: 2, q: 4))', 'unflatten'), 'b=2,c=8,t=4,p=2,q=4,w=16');
  const r = check(out('flatten(x, over: (t, hh), into: n)'));
  assert.equal(codes(r), ['VDM045']);
  assert.is(r.diagnostics[0].hint, "did you mean 'h'?");
  assert.equal(codes(check(out('flatten(x, over: (c, t), into: n)'))), ['VDM045']);
  assert.equal(codes(check(out('flatten(x, over: (h, w), into: t)'))), ['VDM045']);
  assert.equal(codes(check(out('flatten(x, over: (h, w), into: h)'))), ['VDM045']);
  const m = check(out('unflatten(flatten(x, over: (h, w), into: n), n, sizes: (h: 8, w: 8))'));
  assert.equal(codes(m), ['VDM046']);
  assert.match(m.diagnostics[0].message, /hold 64 values, but n=128/);
  assert.equal(codes(check(out('unflatten(x, n, sizes: (p: 2))'))), ['VDM047']);
  assert.equal(codes(check(out('unflatten(x, c, sizes: (p: 2, q: 4))'))), ['VDM047']);
  assert.equal(codes(check(out('unflatten(x, h, sizes: (t: 2, q: 4))'))), ['VDM047']);
  assert.equal(codes(check(out('unflatten(x, h, sizes: (h: 2, q: 4))'))), ['VDM047']);
});

test('sinusoidal: [b] -> [b, c=dim]; sincos: a buffer over the given axes, no parameters', () => {
  const g = graphOf(`model M {
  dims b = 2
  input s : timestep[b]
  input x : video[b, c = 16, t = 2, h = 4, w = 4]
  e = sinusoidal(s, dim: 16)
  p = sincos(x, over: (t, h, w))
  output o = x + p + linear(e, 16)
}`);
  assert.is(axesOf(nodeAt(g, 'sinusoidal')), 'b=2,c=16');
  const table = nodeAt(g, 'sincos');
  assert.is(axesOf(table), 't=2,h=4,w=4,c=16');
  assert.is(table.params.length, 0);
  assert.equal(table.inputs, []);
});

test('elementwise functions keep the shape and also compute on numbers', () => {
  for (const f of ['silu', 'gelu', 'gelu_tanh', 'relu', 'sigmoid', 'tanh', 'exp', 'sqrt', 'abs']) {
    assert.is(shape(`${f}(x)`, f), X, f);
  }
  const g = graphOf(model('  k = sqrt(16) + abs(-2) + exp(0) + relu(-3) + gelu(0)\n  assert k == 7\n  output o = x * k'));
  assert.is(nodeAt(g, 'mul').attrs.scalar, 7);
});

test('an axis that is not in the tensor: VDM020 listing the tensor axes, with did-you-mean', () => {
  const r = check(out('linear(x, 4, axis: hh)'));
  assert.equal(codes(r), ['VDM020']);
  assert.is(r.diagnostics[0].message, "axis 'hh' is not in the tensor [b=2, c=8, t=4, h=8, w=16]");
  assert.is(r.diagnostics[0].hint, "did you mean 'h'?");
});

test('sinusoidal needs an even dim; conv cannot slide over c (VDM035, VDM017)', () => {
  assert.equal(codes(check('model M {\n  dims b\n  input s : timestep[b]\n  output o = sinusoidal(s, dim: 7)\n}')), ['VDM035']);
  assert.equal(codes(check(out('conv(x, over: c, kernel: 3)'))), ['VDM017']);
});

test.run();
