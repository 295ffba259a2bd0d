// Imports: the standard library, relative paths confined to the root, cycles, missing files,
// what an import brings into scope, and lexical scoping of block bodies.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { checkFiles, codes, places } from './helpers.ts';

const USE = 'model M {\n  dims b\n  input x : image[b, c = 4, h = 4, w = 4]\n  output o = f(x)\n}\n';

test('a relative import brings the blocks and lets defined in that file', () => {
  const r = checkFiles({
    'main.vdm': `import "lib/a.vdm"\n${USE}`,
    'lib/a.vdm': 'let width = 8\nblock f(x) { return linear(x, width) }',
  });
  assert.equal(codes(r), []);
  assert.ok(r.graph!.nodes.some((n) => n.op === 'linear' && n.axes.some(([a, s]) => a === 'c' && s === 8)));
});

test('an imported let can be used in the importer, also as a block default', () => {
  const r = checkFiles({
    'main.vdm': `import "lib.vdm"\nmodel M {\n  dims b\n  input x : image[b, c = 4, h = 4, w = 4]\n  output o = f(x, width) + f(x)\n}\n`,
    'lib.vdm': 'let width = 6\nblock f(x, n = width) { return linear(x, n) }',
  });
  assert.equal(codes(r), []);
  const widths = r.graph!.nodes.filter((n) => n.op === 'linear').map((n) => n.axes.find(([a]) => a === 'c')![1]);
  assert.equal(widths, [6, 6], 'passed explicitly, then as the default');
});

test('imports are not transitive: what a.vdm imports is not visible to main.vdm', () => {
  const r = checkFiles({
    'main.vdm': `import "a.vdm"\n${USE.replace('f(x)', 'g(x)')}`,
    'a.vdm': 'import "b.vdm"\nblock f(x) { return g(x) }',
    'b.vdm': 'block g(x) { return silu(x) }',
  });
  assert.equal(places(r), ['VDM011@5:14']);
});

test('block bodies resolve names lexically in their own file', () => {
  const r = checkFiles({
    'main.vdm': `import "a.vdm"\n${USE.replace('  output', '  width = 99\n  output')}`,
    'a.vdm': 'let width = 4\nblock f(x) { return linear(x, width) }',
  });
  assert.equal(codes(r), []);
  assert.ok(r.graph!.nodes.some((n) => n.op === 'linear' && n.axes.some(([a, s]) => a === 'c' && s === 4)));
});

test('VDM012: the same block name from two imports, or imported and defined', () => {
  let r = checkFiles({ 'main.vdm': `import "a.vdm"\nimport "b.vdm"\n${USE}`, 'a.vdm': 'block f(x) { return x }', 'b.vdm': 'block f(x) { return x }' });
  assert.equal(places(r), ['VDM012@2:1']);
  r = checkFiles({ 'main.vdm': `import "a.vdm"\nblock f(x) { return x }\n${USE}`, 'a.vdm': 'block f(x) { return x }' });
  assert.equal(places(r), ['VDM012@2:7']);
});

test('VDM003: a relative import may not leave the root; --root widens it', () => {
  const files = { 'specs/main.vdm': `import "../lib/a.vdm"\n${USE}`, 'lib/a.vdm': 'block f(x) { return x }' };
  let r = checkFiles(files, { entry: 'specs/main.vdm' });
  assert.equal(places(r), ['VDM003@1:8']);
  r = checkFiles(files, { entry: 'specs/main.vdm', root: '.' });
  assert.equal(codes(r), []);
  assert.equal(codes(checkFiles({ 'main.vdm': `import "/etc/passwd"\n${USE}` })), ['VDM003']);
  assert.equal(codes(checkFiles({ 'main.vdm': `import "std/../../cli/main.ts"\n${USE}` })), ['VDM003']);
});

test('VDM004: import cycles, reported with the chain; VDM002: missing files', () => {
  const r = checkFiles({ 'main.vdm': `import "a.vdm"\n${USE}`, 'a.vdm': 'import "b.vdm"\nblock f(x) { return x }', 'b.vdm': 'import "a.vdm"' });
  assert.equal(codes(r), ['VDM004']);
  assert.match(r.diagnostics[0].message, /a\.vdm -> b\.vdm -> a\.vdm/);
  const missing = checkFiles({ 'main.vdm': `import "nope.vdm"\n${USE}` });
  assert.equal(places(missing), ['VDM002@1:8']);
  assert.match(missing.diagnostics[0].message, /no such file/);
  const self = checkFiles({ 'main.vdm': `import "main.vdm"\n${USE.replace('f(x)', 'x')}` });
  assert.equal(codes(self), ['VDM004']);
});

test('a missing import suggests a near file name, or lists the standard library', () => {
  const near = checkFiles({ 'main.vdm': `import "lib/lyers.vdm"\n${USE}`, 'lib/layers.vdm': 'block f(x) { return x }' });
  assert.equal(codes(near), ['VDM002']);
  assert.is(near.diagnostics[0].hint, 'did you mean "lib/layers.vdm"?');
  assert.is(checkFiles({ 'main.vdm': `import "std/ditt.vdm"\n${USE}` }).diagnostics[0].hint, 'did you mean "std/dit.vdm"?');
  assert.match(checkFiles({ 'main.vdm': `import "std/transformer.vdm"\n${USE}` }).diagnostics[0].hint ?? '', /^the standard library has .*"std\/dit\.vdm"/);
  assert.is(checkFiles({ 'main.vdm': `import "gone/x.vdm"\n${USE}` }).diagnostics[0].hint, undefined);
});

test('a failed import does not flood the importer with unknown names', () => {
  const r = checkFiles({ 'main.vdm': `import "nope.vdm"\n${USE}`.replace('output o = f(x)', 'output o = f(g(x), width)') });
  assert.equal(codes(r), ['VDM002']);
});

test('syntax errors in imported files are reported in those files', () => {
  const r = checkFiles({ 'main.vdm': `import "a.vdm"\n${USE}`, 'a.vdm': 'block f(x) { return x +  }' });
  assert.equal(codes(r), ['VDM001']);
  assert.ok(r.diagnostics[0].span!.source.absPath.endsWith('a.vdm'));
});

test('std/ imports resolve to the standard library folder', () => {
  const std = path.resolve('src/std');
  if (!fs.existsSync(std)) return;
  const lib = fs.readdirSync(std).find((f) => f.endsWith('.vdm'));
  if (!lib) return;
  const r = checkFiles({ 'main.vdm': `import "std/${lib}"\nmodel M {\n  dims b\n  input t : timestep[b]\n  output o = t\n}` });
  assert.equal(codes(r), []);
});

test('the entry file itself missing: VDM002 without a position', () => {
  const r = checkFile('/nonexistent/dir/x.vdm');
  assert.equal(codes(r), ['VDM002']);
  assert.is(r.diagnostics[0].span, null);
});

test.run();
