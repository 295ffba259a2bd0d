// Elaboration: names, errors that do not cascade, annotations, dims and overrides, inputs, outputs,
// statement placement, argument lists, and the graph IR it produces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, codes, graphOf, model, places } from './helpers.ts';

test('an unbound name used as a number: VDM010 at the identifier, with did-you-mean', () => {
  const r = check(model('  let hidden = 16\n  y = linear(x, hiden)\n  output o = y'));
  assert.equal(places(r), ['VDM010@6:17']);
  assert.is(r.diagnostics[0].message, "unknown name 'hiden'");
  assert.is(r.diagnostics[0].hint, "did you mean 'hidden'?");
});

test('an error value does not cascade; independent errors are all reported', () => {
  const r = check(model('  y = linear(x, nope)\n  z = linear(y, 4)\n  w2 = silu(z) + y\n  q = attention(x, over: (h, w), heads: 3)\n  output o = w2 + q'));
  assert.equal(codes(r), ['VDM010', 'VDM030']);
});

test('names bound in skipped code (erroneous condition or loop) stay quiet', () => {
  const r = check(model('  if nope > 1 {\n    k = 2\n  }\n  for i in 0..bad {\n    j = 3\n  }\n  y = linear(x, k * j)\n  output o = y'));
  assert.equal(codes(r), ['VDM010', 'VDM010']);
});

test('unknown function or block: VDM011 with did-you-mean; arity errors VDM013-VDM016', () => {
  let r = check(model('  y = lienar(x, 4)\n  output o = y'));
  assert.equal(places(r), ['VDM011@5:7']);
  assert.is(r.diagnostics[0].hint, "did you mean 'linear'?");
  assert.equal(codes(check(model('  y = linear(x, 4, true, "default", c, 9)\n  output o = y'))), ['VDM013']);
  r = check(model('  y = linear(x, 4, biass: false)\n  output o = y'));
  assert.equal(codes(r), ['VDM014']);
  assert.is(r.diagnostics[0].hint, "did you mean 'bias'?");
  assert.equal(codes(check(model('  y = linear(x)\n  output o = y'))), ['VDM015']);
  assert.equal(codes(check(model('  y = linear(x, 4, out: 5)\n  output o = y'))), ['VDM016']);
  const blocks = 'block f(a, b = 2) { return a * b }\n';
  assert.equal(codes(check(model('  y = f(x, 1, 2)\n  output o = y', blocks))), ['VDM013']);
  assert.equal(codes(check(model('  y = f(b: 1)\n  output o = x', blocks))), ['VDM015']);
});

test('wrong kinds of value: VDM017', () => {
  assert.equal(codes(check(model('  y = linear(x, "four")\n  output o = y'))), ['VDM017']);
  assert.equal(codes(check(model('  y = linear(3, 4)\n  output o = y'))), ['VDM017']);
  assert.equal(codes(check(model('  y = linear(x, 2.5)\n  output o = y'))), ['VDM035']);
  assert.equal(codes(check(model('  output o = 3'))), ['VDM017']);
});

test('block defaults may use earlier parameters; blocks return tuples; recursion works', () => {
  const g = graphOf(model(`  (a, b2) = two(x)
  y = deep(a, 3)
  output o = linear(y, 8) + b2`, `
block wide(x, n = size(x, c) * 2) { return linear(x, n) }
block two(x) { return (wide(x), x) }
block deep(x, n) {
  if n == 0 { return x }
  return deep(silu(x), n - 1)
}`));
  assert.ok(g.nodes.some((n) => n.op === 'linear' && n.axes.some(([a, s]) => a === 'c' && s === 16)));
  assert.is(g.nodes.filter((n) => n.op === 'silu').length, 3);
});

test('assert: VDM036 with the assert message; a default message shows the condition', () => {
  let r = check(model('  assert c == 3, "c must be 3 for this model"\n  output o = x'));
  assert.equal(codes(r), ['VDM036']);
  assert.is(r.diagnostics[0].message, 'c must be 3 for this model');
  r = check(model('  assert t > 9\n  output o = x'));
  assert.is(r.diagnostics[0].message, 'assertion failed: t > 9');
});

test('annotations: exact axis set (VDM023), sizes given or implied by a dim', () => {
  graphOf(model('  y: [b, c=16, t, h=h, w=w] = linear(x, 16)\n  output o = y'));
  let r = check(model('  y: [b, c, t, h] = x\n  output o = y'));
  assert.equal(codes(r), ['VDM023']);
  assert.match(r.diagnostics[0].hint!, /not listed: w/);
  r = check(model('  y: [b, c, t, h, w] = linear(x, 16)\n  output o = y'));
  assert.equal(places(r), ['VDM023@5:10']);
  assert.match(r.diagnostics[0].message, /axis 'c' is 16, but the annotation says 8/);
  assert.equal(codes(check(model('  output o: [b, c, t, h=4, w] = x'))), ['VDM023']);
});

test('destructuring: VDM018 on a count mismatch, VDM017 on a non-tuple', () => {
  assert.equal(codes(check(model('  (p, q) = (1, 2, 3)\n  output o = x'))), ['VDM018']);
  assert.equal(codes(check(model('  (p, q) = 5\n  output o = x'))), ['VDM017']);
  graphOf(model('  (p, (q, r)) = (1, (2, 3))\n  assert p + q + r == 6\n  output o = x'));
});

test('dims: defaults, b defaults to 1, --dim overrides, VDM070 for free, unknown or bad dims', () => {
  const text = 'model M {\n  dims b, c = 4, h\n  input x : image[b, c, h, w = h]\n  output o = x\n}';
  let r = check(text, { h: 6 });
  assert.equal(r.graph!.dims, { b: 1, c: 4, h: 6 });
  assert.equal(r.graph!.inputs[0].axes, [['b', 1], ['c', 4], ['h', 6], ['w', 6]]);
  r = check(text);
  assert.equal(places(r), ['VDM070@2:18']);
  r = check(text, { h: 6, q: 2 });
  assert.equal(codes(r), ['VDM070']);
  assert.match(r.diagnostics[0].message, /no dim 'q'/);
  assert.equal(codes(check(text, { h: 0 })), ['VDM070']);
  assert.equal(check(text, { h: 6, c: 16 }).graph!.dims.c, 16);
  assert.equal(codes(check('model M {\n  dims b, c = -1\n  input x : image[b, c, h = 2, w = 2]\n  output o = x\n}')), ['VDM035']);
});

test('inputs: kinds, axes, options, dtype; errors VDM051, VDM023, VDM015, VDM014, VDM010', () => {
  const g = graphOf(`model M {
  dims b = 2, c = 4, t = 3, h = 8, w = 8
  input x : video[b, c, t, h, w]
  input y : label[b](classes: 5, null: true)
  input s : scalar[b](range: (0, 2))
  input p : trajectory[b, t, n = 7, c = 2]
  input txt : text[b, l = 9, c = 16]
  input m : motion[b, c = 2, t, h, w]
  output o = x
}`);
  assert.equal(g.inputs.map((i) => [i.name, i.kind, i.dtype]), [
    ['x', 'video', 'f32'], ['y', 'label', 'i32'], ['s', 'scalar', 'f32'], ['p', 'trajectory', 'f32'], ['txt', 'text', 'f32'], ['m', 'motion', 'f32'],
  ]);
  assert.equal(g.inputs[5].axes, [['b', 2], ['c', 2], ['t', 3], ['h', 8], ['w', 8]]);
  assert.equal(g.inputs[1].options, { classes: 5, null: true });
  assert.equal(g.inputs[2].options, { range: [0, 2] });
  const wrap = (line: string) => `model M {\n  dims b = 2, c = 4, t = 3, h = 8, w = 8\n  ${line}\n  output o = 1\n}`;
  let r = check(wrap('input x : vidoe[b, c, t, h, w]'));
  assert.equal(codes(r).slice(0, 1), ['VDM051']);
  assert.is(r.diagnostics[0].hint, "did you mean 'video'?");
  assert.equal(codes(check(wrap('input x : video[b, c, h, w]'))).slice(0, 1), ['VDM023']);
  assert.equal(codes(check(wrap('input y : label[b]'))).slice(0, 1), ['VDM015']);
  assert.equal(codes(check(wrap('input y : label[b](classes: 3, nul: true)'))).slice(0, 1), ['VDM014']);
  assert.equal(codes(check(wrap('input q : text[b, l, c]'))).slice(0, 1), ['VDM010']);
  assert.equal(codes(check(wrap('input p : trajectory[b, t, n = 2, c = 3]'))).slice(0, 1), ['VDM023']);
  assert.equal(codes(check(wrap('input m : motion[b, c, t, h, w]'))).slice(0, 1), ['VDM023']);
  // a motion map has the video's t, h, w: checked whichever is declared first, at the axis that differs
  const video = 'input x : video[b, c, t, h, w]';
  assert.equal(places(check(wrap(`${video}\n  input m : motion[b, c = 2, t, h = 4, w]`))).slice(0, 1), ['VDM048@4:33']);
  assert.equal(places(check(wrap(`input m : motion[b, c = 2, t = 2, h, w]\n  ${video}`))).slice(0, 1), ['VDM048@4:25']);
  assert.equal(codes(check(wrap(`input m : motion[b, c = 2, t, h, w]\n  ${video}`))).filter((c) => c === 'VDM048'), []);
});

test('placement: return outside a block, input in a block, missing return, two models (VDM019); no output (VDM050)', () => {
  assert.ok(codes(check(model('  return x'))).includes('VDM019'));
  assert.equal(codes(check('block f(x) {\n  input y : image[b, c, h, w]\n  return x\n}')), ['VDM019']);
  assert.equal(places(check('block f(x) {\n  y = x\n}')), ['VDM019@1:7']);
  assert.equal(codes(check('model A { dims b\n input x : timestep[b]\n output o = x }\nmodel B { }')), ['VDM019']);
  assert.equal(places(check('model A {\n  dims b\n  input x : timestep[b]\n}')), ['VDM050@1:7']);
});

test('definitions: a block may not reuse a primitive name, twice-defined blocks and lets (VDM012)', () => {
  assert.equal(codes(check('block linear(x) { return x }')), ['VDM012']);
  assert.equal(codes(check('block f(x) { return x }\nblock f(y) { return y }')), ['VDM012']);
  assert.equal(codes(check('let a = 1\nlet a = 2')), ['VDM012']);
  assert.equal(codes(check('block f(x, x) { return x }')), ['VDM012']);
});

test('tensors cannot exist in a top-level let (VDM019)', () => {
  assert.equal(codes(check('let k = linear(1, 2)')), ['VDM017']);
  assert.equal(codes(check('let k = param((c: 2))')), ['VDM019']);
});

test('the graph IR: dense topological ids, deeply frozen, JSON round trip, spans', () => {
  const g = graphOf(model('  y = linear(x, 4) as proj\n  output o = silu(y)'));
  g.nodes.forEach((n, i) => {
    assert.is(n.id, i);
    for (const input of n.inputs) assert.ok(input < i);
  });
  assert.ok(Object.isFrozen(g) && Object.isFrozen(g.nodes[1]) && Object.isFrozen(g.nodes[1].params[0].shape));
  assert.equal(JSON.parse(JSON.stringify(g)), g);
  const proj = g.nodes.find((n) => n.path === 'proj')!;
  assert.equal({ line: proj.span.line, col: proj.span.col }, { line: 5, col: 7 });
  assert.equal(g.outputs, [{ name: 'o', node: g.nodes.length - 1 }]);
  assert.is(g.model, 'M');
  assert.is(g.diffusion, null);
});

test('a definition error is reported once: calls to a redefined primitive or a block with a repeated parameter stay quiet', () => {
  assert.equal(codes(check(model('  output o = linear(x)', 'block linear(x) { return x }'))), ['VDM012']);
  assert.equal(codes(check(model('  output o = pair(x, x)', 'block pair(x, x) { return x }'))), ['VDM012']);
});

test('init must be one of the known initialisations (VDM017)', () => {
  const r = check(model('  y = linear(x, 8, init: "chaos")\n  output o = y'));
  assert.equal(codes(r), ['VDM017']);
  assert.match(r.diagnostics[0].message, /"xavier_uniform"/);
});

test.run();
