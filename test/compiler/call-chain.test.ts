// Call-site chains: an error raised inside a block says which calls led there, innermost first,
// down to an excerpt of the call in the user's spec; in the standard library the hint also names
// the arguments the user's call passed.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { STD_DIR } from '../../src/compiler/frontend/imports.ts';
import { check, checkFiles, places } from './helpers.ts';

const DIT = `import "std/dit.vdm"
model M {
  dims b, c = 4, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  let d = 64
  cond = timestep_embedder(s, d)
  z = linear(x, d)
  for i in 0..3 as blocks {
    z = dit_block(z, cond, 5, over: (h, w))
  }
  output eps = linear(z, c)
}
`;

test('an error in a standard-library block keeps its place there and leads back to the user\'s call', () => {
  const r = check(DIT);
  assert.is(r.diagnostics.length, 1, r.diagnostics.map(formatDiagnostic).join('\n'));
  const d = r.diagnostics[0];
  // The primary location is the line of the library where the check failed.
  const std = fs.readFileSync(path.join(STD_DIR, 'dit.vdm'), 'utf8');
  assert.is(d.span!.source.absPath, path.join(STD_DIR, 'dit.vdm'));
  assert.is(std.slice(d.span!.start, d.span!.end), 'heads: heads');
  const text = formatDiagnostic(d);
  const lines = text.split('\n');
  // Shown as imported, whatever the working directory or install location.
  assert.match(lines[0], /^std\/dit\.vdm:\d+:\d+: error VDM030: heads=5 does not divide c=64$/);
  assert.match(lines[3], /^ {3}note: in block 'dit_block' called at .*main\.vdm:10:9$/);
  assert.is(lines[4], ' 10 |     z = dit_block(z, cond, 5, over: (h, w))');
  assert.is(lines[5], `    |         ${'^'.repeat('dit_block(z, cond, 5, over: (h, w))'.length)}`);
  assert.match(lines[6], /^ {3}hint: .*standard library.*passed heads=5, over=\(h, w\)$/);
});

test('every level of a chain is named, innermost first; the outermost call is shown', () => {
  const r = checkFiles({
    'main.vdm': 'import "lib.vdm"\nmodel M {\n  dims b, c = 4, t = 2, h = 4, w = 4\n  input x : video[b, c, t, h, w]\n  output o = outer(linear(x, 6))\n}\n',
    'lib.vdm': 'block inner(x) { return split(x, 4) }\nblock middle(x) { return inner(x) }\nblock outer(x) {\n  parts = middle(x)\n  return parts[0]\n}\n\n',
  });
  assert.equal(places(r), ['VDM030@1:34']);
  const notes = formatDiagnostic(r.diagnostics[0]).split('\n').filter((l) => l.includes('note:'));
  assert.equal(notes.map((l) => l.replace(/called at .*[/\\]/, 'called at ')), [
    "   note: in block 'inner' called at lib.vdm:2:26",
    "   note: in block 'middle' called at lib.vdm:4:11",
    "   note: in block 'outer' called at main.vdm:5:14",
  ]);
  assert.ok(formatDiagnostic(r.diagnostics[0]).includes(' 5 |   output o = outer(linear(x, 6))\n   |              ^^^^^'));
  // Not a library block: the hint speaks of the error only.
  assert.not.match(formatDiagnostic(r.diagnostics[0]), /standard library/);
});

test('calls that fail at one place in other words are each reported; the same words once', () => {
  const r = check(`block attend(x, heads) { return attention(x, over: (t, h, w), heads: heads) }
model M {
  dims b, c = 4, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  z = linear(x, 64)
  a = attend(z, 5)
  b2 = attend(z, 3)
  c2 = attend(z, 5)
  output o = linear(a + b2 + c2, c)
}
`);
  assert.equal(r.diagnostics.map((d) => d.message), ['heads=5 does not divide c=64', 'heads=3 does not divide c=64']);
  assert.match(formatDiagnostic(r.diagnostics[1]), /called at .*main\.vdm:7:8\n 7 \|   b2 = attend\(z, 3\)/);
});

test('a recursion shows its repeating cycle once, with a count', () => {
  const r = check(`block g(x) { return k(x) }
block k(x) { return g(x) }
model M {
  dims b, c = 4, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  output o = g(x)
}
`);
  assert.equal(places(r), ['VDM042@2:21']);
  const notes = formatDiagnostic(r.diagnostics[0]).split('\n').filter((l) => l.includes('note:'));
  assert.is(notes.length, 5, notes.join('\n'));
  assert.match(notes[2], /these 2 calls repeat 30 more times/);
  assert.match(notes[4], /in block 'g' called at .*main\.vdm:6:14$/);
});

test('an unknown name written in one block and used by its caller gets no misleading chain', () => {
  const r = check(model('  output o = linear(x, leak())', 'block leak() { return bogus }'));
  assert.equal(places(r), ['VDM010@1:23']);
  assert.not.ok(formatDiagnostic(r.diagnostics[0]).includes('note:'));
});

test('an error outside any block has no notes', () => {
  const r = check(model('  output o = attention(x, over: (t, h, w), heads: 3)'));
  assert.equal(places(r), ['VDM030@5:44']);
  assert.not.ok(formatDiagnostic(r.diagnostics[0]).includes('note:'));
});

function model(body: string, head = ''): string {
  return `${head}\nmodel M {\n  dims b, c = 4, t = 2, h = 4, w = 4\n  input x : video[b, c, t, h, w]\n${body}\n}\n`;
}

test.run();
