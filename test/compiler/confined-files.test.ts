// Confined files (issue #14): imports are checked against the spec root after their symbolic
// links are resolved, only regular files of at most LIMITS.fileBytes are read (a FIFO or a
// device is refused at once, never waited on), and no diagnostic shows text of a file outside the root.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { LIMITS } from '../../src/compiler/frontend/limits.ts';
import { codes, tempDir } from './helpers.ts';

const TINY = 'model M {\n  dims b = 2, c = 4, t = 2, h = 4, w = 4\n  input x : video[b, c, t, h, w]\n  output o = x\n}\n';

/** root/ and outside/ side by side in a fresh folder. */
function layout(files: Record<string, string>): { dir: string; root: string } {
  const dir = tempDir();
  const root = path.join(dir, 'root');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(dir, 'outside'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return { dir, root };
}

const shown = (r: ReturnType<typeof checkFile>) => r.diagnostics.map(formatDiagnostic).join('\n');

test('a symbolic link inside the root to a file outside it is refused (VDM003) and its text never shown', () => {
  const { root } = layout({ 'outside/secret.txt': 'the password is hunter2\n', 'root/main.vdm': `import "link.vdm"\n${TINY}` });
  fs.symlinkSync('../outside/secret.txt', path.join(root, 'link.vdm'));
  const r = checkFile(path.join(root, 'main.vdm'));
  assert.equal(codes(r), ['VDM003']);
  assert.match(r.diagnostics[0].message, /symbolic link/);
  assert.not.ok(shown(r).includes('hunter2'), shown(r));
});

test('a linked folder inside the root that leads out of it is refused too', () => {
  const { dir, root } = layout({ 'outside/lib.vdm': 'let secret = nope nope\n', 'root/main.vdm': `import "out/lib.vdm"\n${TINY}` });
  fs.symlinkSync(path.join(dir, 'outside'), path.join(root, 'out'));
  const r = checkFile(path.join(root, 'main.vdm'));
  assert.equal(codes(r), ['VDM003']);
  assert.not.ok(shown(r).includes('nope'), shown(r));
});

test('a symbolic link to /dev/zero is refused at once', () => {
  const { root } = layout({ 'root/main.vdm': `import "zero.vdm"\n${TINY}` });
  fs.symlinkSync('/dev/zero', path.join(root, 'zero.vdm'));
  assert.equal(codes(checkFile(path.join(root, 'main.vdm'))), ['VDM003']);
  // With the root at /, the link stays inside it: the device is still never read.
  assert.equal(codes(checkFile(path.join(root, 'main.vdm'), { root: '/' })), ['VDM002']);
});

test('a FIFO inside the root is refused as not a regular file, not waited on', () => {
  const { root } = layout({ 'root/main.vdm': `import "pipe.vdm"\n${TINY}` });
  const made = spawnSync('mkfifo', [path.join(root, 'pipe.vdm')]);
  if (made.status !== 0) return; // no mkfifo on this system
  const r = checkFile(path.join(root, 'main.vdm'));
  assert.equal(codes(r), ['VDM002']);
  assert.match(r.diagnostics[0].message, /not a regular file/);
  const entry = checkFile(path.join(root, 'pipe.vdm'));
  assert.equal(codes(entry), ['VDM002']);
});

test('a link inside the root to a file inside it is followed, and one file under two names loads once', () => {
  const { root } = layout({ 'root/lib.vdm': 'block twice(x) {\n  return x * 2\n}\n', 'root/main.vdm': `import "lib.vdm"\nimport "alias.vdm"\n${TINY}` });
  fs.symlinkSync('lib.vdm', path.join(root, 'alias.vdm'));
  assert.equal(codes(checkFile(path.join(root, 'main.vdm'))), []);
});

test('an import named ..\\x (a file name on Linux) is inside the root', () => {
  if (path.sep !== '/') return;
  const { root } = layout({ 'root/..\\x.vdm': 'let k = 3\n', 'root/..y.vdm': 'let j = 4\n', 'root/main.vdm': `import "..\\\\x.vdm"\nimport "..y.vdm"\n${TINY}` });
  const r = checkFile(path.join(root, 'main.vdm'));
  assert.equal(r.diagnostics.map(formatDiagnostic), []);
  // a real `..` segment still leaves it
  fs.writeFileSync(path.join(root, 'up.vdm'), `import "../outside/a.vdm"\n${TINY}`);
  assert.equal(codes(checkFile(path.join(root, 'up.vdm'))), ['VDM003']);
});

test('a spec over the size limit is refused before parsing (VDM002), an import too', () => {
  const big = `${TINY}/*${'x'.repeat(LIMITS.fileBytes)}*/\n`;
  const { root } = layout({ 'root/big.vdm': big, 'root/main.vdm': `import "big.vdm"\n${TINY}` });
  const entry = checkFile(path.join(root, 'big.vdm'));
  assert.equal(codes(entry), ['VDM002']);
  assert.match(entry.diagnostics[0].message, /over the limit of 1 MiB/);
  const imported = checkFile(path.join(root, 'main.vdm'));
  assert.equal(codes(imported), ['VDM002']);
});

test('a file just under the size limit is read', () => {
  const text = `${TINY}//${'x'.repeat(LIMITS.fileBytes - TINY.length - 10)}\n`;
  const { root } = layout({ 'root/main.vdm': text });
  assert.equal(codes(checkFile(path.join(root, 'main.vdm'))), []);
});

test.run();
