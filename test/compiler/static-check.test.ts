// What a library file without a model gets: syntax, names, argument lists, placement.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, codes, places } from './helpers.ts';

test('a file of blocks that is fine has no diagnostics and no graph', () => {
  const r = check('let ratio = 4\nblock mlp(x, r = ratio) {\n  h = linear(x, size(x, c) * r) as fc1\n  return linear(gelu(h), size(x, c)) as fc2\n}');
  assert.equal(codes(r), []);
  assert.is(r.graph, undefined);
  assert.is(r.hasModel, false);
});

test('blocks that are never called are still checked for unknown calls and argument lists', () => {
  const r = check(`block a(x) {
  y = linaer(x, 4)
  z = conv(x, kernel: 3)
  w = attention(x, over: h, hedas: 2)
  q = b(x, 1, 2)
  return silu(x, x)
}
block b(x) { return x }`);
  assert.equal(places(r), ['VDM011@2:7', 'VDM015@3:7', 'VDM014@4:29', 'VDM013@5:12', 'VDM013@6:18']);
  assert.is(r.diagnostics[0].hint, "did you mean 'linear'?");
  assert.is(r.diagnostics[2].hint, "did you mean 'heads'?");
});

test('calling a value of the block, the model or the file says it is a value, not a block', () => {
  // a block's parameter may hold a shared module: calling it is checked when the block runs
  const r = check(`let scale = 2
block a(x, proj) {
  hidden = 8
  y = proj(x)
  return hidden(y) + scale(x)
}
model M {
  dims b, c = 4, h = 4, w = 4
  input x : image[b, c, h, w]
  width = 8
  output o = width(x) + a(x, 3)
}`);
  assert.equal(places(r), ['VDM011@4:7', 'VDM011@5:10', 'VDM011@5:22', 'VDM011@11:14']);
  assert.equal(r.diagnostics.map((d) => d.hint), ['proj', 'hidden', 'scale', 'width'].map((n) => `'${n}' is a value here, not a block or function`));
});

test('placement inside blocks and top-level lets that use blocks', () => {
  assert.equal(codes(check('block f(x) {\n  output o = x\n  return x\n}')), ['VDM019']);
  assert.equal(codes(check('block f(x) {\n  if x { return x }\n}')), []);
  assert.equal(codes(check('let k = nope(3)')), ['VDM011']);
  assert.equal(codes(check('block twice(n) { return 2 * n }\nlet k = twice(3)\nlet j = twice(k, 1)')), ['VDM013']);
});

test('concat is variadic; builtins check their counts', () => {
  assert.equal(codes(check('block f(x) { return concat(x, x, x, axis: t) }')), []);
  assert.equal(codes(check('block f(x) { return size(x) }')), ['VDM015']);
  assert.equal(codes(check('block f(x) { return max(x, 1, 2) + range(1, 2, 3) }')), ['VDM013']);
});

test.run();
