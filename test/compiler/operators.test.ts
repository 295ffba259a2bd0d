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

test('tuple slices xs[a..b]: half-open, negative ends from the end, names kept, ranges give ranges', () => {
  graphOf(model(`  xs = (1, 2, 3, 4)
  assert xs[1..3] == (2, 3) and len(xs[0..-1]) == 3 and xs[-2..-1] == (3,) and len(xs[2..2]) == 0
  assert xs[0..len(xs)] == xs
  k = (t: 1, h: 2, w: 4)
  kk = k[1..3]
  assert len(kk) == 2 and kk[w] == 4
  r = reversed(0..10)
  rs = r[1..4]
  assert len(rs) == 3 and rs[0] == 8 and rs[-1] == 6
  fw = (0..10)
  ws = fw[3..-2]
  assert len(ws) == 5 and ws[0] == 3 and ws[-1] == 7
  output o = x`));
});

test('a slice past either end, with ends crossed, or by a reversed range: VDM017 at the slice', () => {
  for (const [s, msg] of [['xs[0..4]', /slice 0..4 is out of range for 3 items/], ['xs[-4..1]', /out of range/],
    ['xs[2..1]', /out of range/], ['xs[reversed(0..2)]', /reversed range cannot slice/]] as const) {
    const r = check(model(`  xs = (1, 2, 3)\n  ys = ${s}\n  output o = x`));
    assert.equal(codes(r), ['VDM017'], s);
    assert.match(r.diagnostics[0].message, msg);
    assert.equal(places(r), ['VDM017@6:11'], s);
  }
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
