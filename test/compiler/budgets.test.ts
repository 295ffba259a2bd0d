// Budgets: nothing hangs or exhausts memory; each limit ends with its code, quickly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, checkFiles, codes, model } from './helpers.ts';

/** CPU time, not wall time: other processes on a shared machine must not fail a budget. */
function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.cpuUsage();
  const value = f();
  const { user, system } = process.cpuUsage(t0);
  return { value, ms: (user + system) / 1000 };
}

test('a huge repeat ends at once with VDM040', () => {
  const { value, ms } = timed(() => check(model('  repeat 1000000000 {\n    x = silu(x)\n  }\n  output o = x')));
  assert.equal(codes(value), ['VDM040']);
  assert.ok(ms < 1000, `${ms} ms`);
});

test('nested loops that multiply up end with VDM040 (step budget)', () => {
  const { value, ms } = timed(() => check(model('  for i in 0..10000 {\n    for j in 0..10000 {\n      k = i + j\n    }\n  }\n  output o = x')));
  assert.equal(codes(value), ['VDM040']);
  assert.ok(ms < 5000, `${ms} ms`);
});

test('too many graph nodes: VDM043', () => {
  const { value, ms } = timed(() => check(model('  for i in 0..10000 {\n    for j in 0..25 {\n      x = silu(x)\n    }\n  }\n  output o = x')));
  assert.equal(codes(value), ['VDM043']);
  assert.ok(ms < 5000, `${ms} ms`);
});

test('recursion deeper than 64: VDM042', () => {
  const r = check(model('  output o = f(x, 0)', 'block f(x, n) { return f(x, n + 1) }'));
  assert.equal(codes(r), ['VDM042']);
});

test('exponential recursion ends with a budget error, not a hang', () => {
  const { value, ms } = timed(() => check(model('  output o = f(x, 40)', 'block f(x, n) {\n  if n == 0 { return x }\n  return f(x, n - 1) + f(x, n - 1)\n}')));
  assert.ok(['VDM040', 'VDM043'].includes(codes(value)[0]), codes(value).join());
  assert.ok(ms < 5000, `${ms} ms`);
});

test('sizes over 2^31 or tensors over 2^40 elements: VDM041', () => {
  assert.equal(codes(check('model M {\n  dims b, c = 4, h = 4294967296\n  input x : image[b, c, h, w = 2]\n  output o = x\n}')), ['VDM041']);
  assert.equal(codes(check('model M {\n  dims b = 2048, c = 1024, h = 1024, w = 1024\n  input x : image[b, c, h, w]\n  output o = x\n}')), ['VDM041']);
  assert.equal(codes(check(model('  y = linear(x, 3000000000)\n  output o = y'))), ['VDM041']);
});

test('imports nested deeper than 32 files: VDM004', () => {
  const files: Record<string, string> = { 'main.vdm': 'import "f0.vdm"' };
  for (let i = 0; i < 40; i++) files[`f${i}.vdm`] = `import "f${i + 1}.vdm"`;
  files['f40.vdm'] = 'let k = 1';
  assert.equal(codes(checkFiles(files)), ['VDM004']);
});

test('ranges stay symbolic: len, min, max, reversed of a billion-element range are instant', () => {
  const { value, ms } = timed(() => check(model('  r = 0..1000000000\n  rr = reversed(r)\n  assert len(r) == 1000000000 and max(r) == 999999999 and rr[0] == 999999999\n  for i in rr {\n    x = x + i\n  }\n  output o = x')));
  assert.equal(codes(value), ['VDM040']);
  assert.ok(ms < 1000, `${ms} ms`);
});

test('a tuple doubled sixty times stops at the tuple size limit (VDM041)', () => {
  assert.equal(codes(check(model('  xs = (1,)\n  repeat 60 {\n    xs = xs + xs\n  }\n  output o = x'))), ['VDM041']);
});

test('a sum of 3000 terms, a conjunction of 3000, and 120 nested parentheses parse and evaluate', () => {
  const sum = Array(3000).fill('1').join(' + ');
  assert.equal(codes(check(model(`  assert ${sum} == 3000\n  output o = x`))), []);
  const conj = Array(3000).fill('true').join(' and ');
  assert.equal(codes(check(model(`  assert ${conj} and false or 1 > 2, "no"\n  output o = x`))), ['VDM036']);
  const deep = `${'('.repeat(120)}2${')'.repeat(120)}`;
  assert.equal(codes(check(model(`  assert ${deep} == 3, "two"\n  output o = x`))), ['VDM036']);
});

test.run();
