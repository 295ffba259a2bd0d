import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CODES, diag, formatDiagnostic, internalError, sortAndDedupe } from '../../src/compiler/ir/diagnostics.ts';
import { SourceFile, span, wholeFile } from '../../src/compiler/ir/source.ts';

const src = new SourceFile('/virtual/spec.vdm', 'model M {\n  x = patchify(x, patch: (h: 2))\n}\n', 'specs/spec.vdm');

test('FILE:LINE:COL: error CODE: message, the line with a gutter, carets under the span, the hint', () => {
  const start = src.text.indexOf('patch:');
  const d = diag('VDM031', span(src, start, start + 'patch: (h: 2)'.length), 'patch size h=2 does not divide h=31', 'set h to a multiple of 2');
  assert.is(formatDiagnostic(d), [
    'specs/spec.vdm:2:19: error VDM031: patch size h=2 does not divide h=31',
    ' 2 |   x = patchify(x, patch: (h: 2))',
    '   |                   ^^^^^^^^^^^^^',
    '   hint: set h to a multiple of 2',
  ].join('\n'));
});

test('an empty span gets one caret; a span over several lines is underlined to the end of its first line', () => {
  const at = src.text.indexOf('x =');
  assert.ok(formatDiagnostic(diag('VDM001', span(src, at, at), 'm')).endsWith('\n   |   ^'));
  const multi = formatDiagnostic(diag('VDM050', span(src, 0, src.text.length), 'm'));
  assert.ok(multi.endsWith(' 1 | model M {\n   | ^^^^^^^^^'), multi);
});

test('tabs before the span are kept so carets line up', () => {
  const tabbed = new SourceFile('/virtual/t.vdm', '\tx = y\n', 't.vdm');
  const out = formatDiagnostic(diag('VDM010', span(tabbed, 5, 6), "unknown name 'y'"));
  assert.ok(out.includes(' 1 | \tx = y\n   | \t    ^'), out);
});

test('gutter width follows the line number', () => {
  const long = new SourceFile('/v/l.vdm', `${'\n'.repeat(11)}abc\n`, 'l.vdm');
  const out = formatDiagnostic(diag('VDM010', span(long, 11, 14), 'm'));
  assert.ok(out.includes('\n 12 | abc\n    | ^^^'), out);
});

test('whole-file and command-line diagnostics print no source line', () => {
  assert.is(formatDiagnostic(diag('VDM002', wholeFile(src), 'cannot read')), 'specs/spec.vdm: error VDM002: cannot read');
  assert.is(formatDiagnostic({ ...diag('VDM070', null, 'bad dim'), file: 'vdm' }), 'vdm: error VDM070: bad dim');
});

test('internal errors are one clear line, never a stack trace', () => {
  const text = formatDiagnostic(internalError('a.vdm', new Error('boom')));
  assert.is(text, 'a.vdm: internal error: boom (this is a bug in vdm, not in the spec)');
});

test('sortAndDedupe orders by position and drops repeats', () => {
  const a = diag('VDM010', span(src, 20, 21), 'x');
  const b = diag('VDM011', span(src, 5, 6), 'y');
  const sorted = sortAndDedupe([a, b, a, diag('VDM010', span(src, 20, 21), 'x')]);
  assert.equal(sorted.map((d) => d.code), ['VDM011', 'VDM010']);
});

test('every code of the design is defined once, with a title', () => {
  const codes = Object.keys(CODES);
  for (const c of ['VDM001', 'VDM004', 'VDM019', 'VDM024', 'VDM025', 'VDM036', 'VDM043', 'VDM045', 'VDM046', 'VDM047', 'VDM048', 'VDM051', 'VDM061', 'VDM062', 'VDM070']) assert.ok(codes.includes(c), c);
  assert.is(codes.length, 45);
  for (const c of codes) assert.match(c, /^VDM\d{3}$/);
});

test.run();
