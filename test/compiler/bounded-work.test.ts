// Bounded work (issue #14): every compile-time value counts against the value budgets (size and
// nesting: VDM041) and all the building, copying and comparing against the work budget (VDM040);
// messages that show a value show it abbreviated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, codes, model, places } from './helpers.ts';
import { MAX_MESSAGE } from '../../src/compiler/ir/diagnostics.ts';
import { LIMITS } from '../../src/compiler/frontend/limits.ts';

test('a tuple nested in itself sixty times stops at the value size limit, located at the tuple', () => {
  const r = check(model('  let xs = (1, 2)\n  repeat 60 {\n    xs = (xs, xs)\n  }\n  assert xs == xs\n  output o = x'));
  assert.equal(places(r), ['VDM041@7:10']);
  assert.match(r.diagnostics[0].message, new RegExp(`over the limit of ${LIMITS.valueSize}`));
});

test('a string doubled sixty times stops at the value size limit, not with an internal error', () => {
  const r = check(model('  s = "ab"\n  repeat 60 {\n    s = s + s\n  }\n  output o = x'));
  assert.equal(places(r), ['VDM041@7:9']);
});

test('tuples nested deeper than the depth limit: VDM041', () => {
  const r = check(model(`  xs = (1,)\n  repeat ${LIMITS.valueDepth + 10} {\n    xs = (xs,)\n  }\n  output o = x`));
  assert.equal(codes(r), ['VDM041']);
  assert.match(r.diagnostics[0].message, /nest deeper/);
});

test('comparing a large tuple over and over ends with the work budget (VDM040)', () => {
  const r = check(model('  xs = (1,)\n  repeat 16 {\n    xs = xs + xs\n  }\n  for i in 0..10000 {\n    assert xs == xs\n  }\n  output o = x'));
  assert.equal(codes(r), ['VDM040']);
  assert.match(r.diagnostics[0].message, /more than \d+ values and characters/);
});

test('copying a large tuple on every iteration ends with the work budget (VDM040)', () => {
  const r = check(model('  xs = (1,)\n  repeat 16 {\n    xs = xs + xs\n  }\n  for i in 0..10000 {\n    ys = reversed(xs + (i,))\n  }\n  output o = x'));
  assert.equal(codes(r), ['VDM040']);
});

test('a large tuple passed to a layer is shown abbreviated in the message', () => {
  const r = check(model('  xs = (1, 2)\n  repeat 14 {\n    xs = (xs, xs)\n  }\n  output o = linear(x, xs)'));
  assert.equal(codes(r), ['VDM017']);
  const m = r.diagnostics[0].message;
  assert.ok(m.length < MAX_MESSAGE + 100, `message of ${m.length} characters`);
  assert.match(m, /characters left out/);
});

test('a large argument of a library block call is abbreviated in the hint', () => {
  const r = check(`import "std/dit.vdm"\nmodel M {\n  dims b = 2, c = 8, t = 2, h = 4, w = 4\n  input x : video[b, c, t, h, w]\n  input s : timestep[b]\n  cond = timestep_embedder(s, c)\n  xs = (1, 2)\n  repeat 12 {\n    xs = (xs, xs)\n  }\n  output o = dit_block(x, cond, xs, over: (h, w))\n}\n`);
  assert.ok(r.diagnostics.length > 0);
  for (const d of r.diagnostics) {
    assert.ok(d.message.length < MAX_MESSAGE + 100 && (d.hint ?? '').length < MAX_MESSAGE + 100, `${d.message}\n${d.hint}`);
  }
});

/** The least CPU time of three checks of `text` (the machine may be shared: wall time alone can spike). */
function bestCpuMs(text: string): { ms: number; r: ReturnType<typeof check> } {
  let best = Infinity;
  let r = check(text);
  for (let i = 0; i < 3; i++) {
    const t0 = process.cpuUsage();
    r = check(text);
    const t = process.cpuUsage(t0);
    best = Math.min(best, (t.user + t.system) / 1000);
  }
  return { ms: best, r };
}

test('the doubling reproducers end in a located diagnostic within a second', () => {
  const tuple = model('  let xs = (1, 2)\n  repeat 60 {\n    xs = (xs, xs)\n  }\n  assert xs == xs\n  output o = linear(x, xs)');
  const text = model('  s = "ab"\n  repeat 60 {\n    s = s + s\n  }\n  assert s == s\n  output o = linear(x, len(s))');
  for (const [what, source] of [['tuple', tuple], ['string', text]]) {
    const { ms, r } = bestCpuMs(source);
    assert.equal(codes(r), ['VDM041'], what);
    assert.ok(r.diagnostics[0].span, `${what}: the diagnostic has a place`);
    assert.ok(ms < 1000, `${what}: ${ms.toFixed(0)} ms of CPU time`);
  }
});

test('errors inside loops nested a million iterations deep are each kept once, within a second (a fuzz campaign case)', () => {
  const source = model('  repeat 1000 {\n    repeat 1000 {\n      repeat 16 {\n        if 16 {\n        } else {\n        }\n'
    + '        dims h = 1e300\n        dims t\n        output eps : video[w, t] = 2147483648\n      }\n    }\n  }\n  output o = x');
  const { ms, r } = bestCpuMs(source);
  assert.ok(codes(r).includes('VDM040') && !codes(r).includes('internal'), codes(r).join(' '));
  assert.is(new Set(places(r)).size, places(r).length, `each once: ${places(r).join(' ')}`);
  assert.ok(r.diagnostics.length < 10, `${r.diagnostics.length} diagnostics`);
  assert.ok(ms < 1000, `${ms.toFixed(0)} ms of CPU time`);
});

test('ordinary tuples and strings are untouched by the budgets', () => {
  const r = check(model('  xs = (1, 2, 3) + (4, 5)\n  s = "a" + "b"\n  assert len(xs) == 5 and s == "ab" and xs == (1, 2, 3, 4, 5)\n  output o = x'));
  assert.equal(codes(r), []);
});

test.run();
