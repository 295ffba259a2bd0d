// Compile-time arithmetic and name-based broadcasting of tensor operators.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { axesOf, check, codes, graphOf, model, nodeAt, places } from './helpers.ts';

test('numbers: / gives an int when exact, else a float; %, **, comparisons, and/or/not', () => {
  graphOf(model(`  assert 6 / 3 == 2
  assert 7 / 2 == 3.5
  assert 7 % 3 == 1
  assert 2 ** 10 == 1024
  assert floor(7 / 2) == 3 and ceil(7 / 2) == 4
  assert not (1 > 2) or false
  assert (if 1 < 2 then 10 else 20) == 10
  assert c * 2 == 16
  output o = x`));
});

test('tuples: + concatenates, indexing (negative from the end), len, reversed, min/max, ranges', () => {
  graphOf(model(`  xs = (1, 2) + (3,)
  assert len(xs) == 3 and xs[0] == 1 and xs[-1] == 3
  rs = reversed(xs)
  assert rs[0] == 3
  assert min(xs) == 1 and max(4, 9, 2) == 9
  assert len(0..5) == 5 and len(range(2, 7)) == 5
  rr = reversed(0..3)
  assert rr[0] == 2
  k = (h: 2, w: 4)
  assert k[w] == 4
  output o = x`));
});

test('tensor op tensor broadcasts by axis name: left axes first, then new ones', () => {
  const g = graphOf(model('  m = mean(x, over: (t, h, w))\n  e = expand(mean(x, over: (b, c, t, w)), sizes: (q: 3))\n  y = m + e\n  output o = y'));
  assert.is(axesOf(nodeAt(g, 'add')), 'b=2,c=8,h=8,q=3');
});

test('tensor op number keeps the shape and records the number and its side', () => {
  const g = graphOf(model('  y = 1 - x / 2\n  output o = -y'));
  const div = nodeAt(g, 'div');
  assert.equal(div.attrs, { scalar: 2, side: 'right' });
  assert.equal(nodeAt(g, 'sub').attrs, { scalar: 1, side: 'left' });
  assert.ok(nodeAt(g, 'neg'));
});

test('a shared axis with two sizes: VDM021 naming both sizes', () => {
  const r = check(model('  p = pool(x, kernel: (h: 2))\n  y = x + p\n  output o = y'));
  assert.equal(codes(r), ['VDM021']);
  assert.match(r.diagnostics[0].message, /axis 'h' has size 8 on the left but 4 on the right/);
  assert.match(r.diagnostics[0].hint!, /h=8.*h=4/);
  assert.equal(places(r), ['VDM021@6:7']);
});

test('wrong kinds: VDM017 for comparing tensors, bool arithmetic, non-bool conditions', () => {
  assert.equal(codes(check(model('  assert x == x\n  output o = x'))), ['VDM017']);
  assert.equal(codes(check(model('  k = true + 1\n  output o = x'))), ['VDM017']);
  assert.equal(codes(check(model('  if 3 { x = x }\n  output o = x'))), ['VDM017']);
  assert.equal(codes(check(model('  k = 1 / 0\n  output o = x'))), ['VDM035']);
});

test.run();
