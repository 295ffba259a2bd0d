// `vdm diff`: exit codes, formats, git revisions (REV:PATH), the git diff driver, and a byte order
// mark read as the checker reads it. What the diff says is tested in test/diff.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDiff, type DiffOptions } from '../../src/cli/diff.ts';
import { runFmt } from '../../src/cli/fmt.ts';

const root = path.resolve(import.meta.dirname, '../..');
const pairs = path.join(root, 'test/diff');

const options = (o: Partial<DiffOptions> = {}): DiffOptions => ({ format: 'text', failOnChange: false, git: false, color: false, dims: {}, ...o });
function run(args: string[], o: Partial<DiffOptions> = {}) {
  let out = '', err = '';
  const code = runDiff(args, options(o), { out: (t) => { out += t; }, err: (t) => { err += t + '\n'; } });
  return { code, out, err };
}

test('exit codes: 0 changed or not, 1 with --fail-on-change on a change, 2 when a side cannot be checked', () => {
  const [a, b] = ['a.vdm', 'b.vdm'].map((f) => path.join(pairs, 'depth-change', f));
  assert.is(run([a, b]).code, 0);
  assert.is(run([a, b], { failOnChange: true }).code, 1);
  assert.is(run([a, a], { failOnChange: true }).code, 0);
  const missing = run([a, path.join(pairs, 'nope.vdm')]);
  assert.is(missing.code, 2);
  assert.match(missing.err, /VDM002.*nope\.vdm/);
  const broken = run([a, path.join(root, 'test/broken/heads_not_dividing.vdm')]);
  assert.is(broken.code, 2);
  assert.match(broken.err, /error VDM030/);
  assert.not.match(broken.err, /\n\s+at /);
  assert.is(run([a]).code, 2);
});

test('formats: JSON parses, text is colored only when asked', () => {
  const [a, b] = ['a.vdm', 'b.vdm'].map((f) => path.join(pairs, 'window-change', f));
  const json = JSON.parse(run([a, b], { format: 'json' }).out);
  assert.is(json.attention[0].attr, 'window');
  assert.not.match(run([a, b]).out, /\x1b\[/);
  assert.match(run([a, b], { color: true }).out, /\x1b\[33m  ~ st\.attn window/);
});

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const widen = (width: number) => `block widen(x) {\n  return linear(x, ${width})\n}\n`;

function tempRepo(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-diff-repo-'));
  git(dir, 'init', '-q');
  git(dir, 'config', 'user.email', 'test@example.invalid');
  git(dir, 'config', 'user.name', 'test');
  fs.mkdirSync(path.join(dir, 'specs'));
  // The model imports a sibling, so a revision must bring the sibling of that revision along.
  fs.writeFileSync(path.join(dir, 'specs/width.vdm'), widen(32));
  fs.copyFileSync(path.join(pairs, 'renamed-block/a.vdm'), path.join(dir, 'specs/m.vdm'));
  const m = path.join(dir, 'specs/m.vdm');
  fs.writeFileSync(m, fs.readFileSync(m, 'utf8').replace('import "std/layers.vdm"', 'import "std/layers.vdm"\nimport "width.vdm"').replace('linear(x, 32)', 'widen(x)'));
  fs.writeFileSync(path.join(dir, 'specs/lib.vdm'), 'block twice(x) {\n  return x + x\n}\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'first');
  return dir;
}

test('REV:PATH reads the spec and its relative imports from that revision', () => {
  const dir = tempRepo();
  const cwd = process.cwd();
  try {
    fs.writeFileSync(path.join(dir, 'specs/width.vdm'), widen(64));
    process.chdir(dir);
    const r = run(['HEAD:specs/m.vdm', 'specs/m.vdm'], { format: 'json' });
    assert.is(r.code, 0, r.err);
    const diff = JSON.parse(r.out);
    assert.is(diff.a.label, 'HEAD:specs/m.vdm');
    const { path: param, a: before, b: after } = diff.params[0];
    assert.equal({ param, before, after }, { param: 'proj_in.linear.weight', before: [4, 32], after: [4, 64] });
    const bad = run(['nosuchrev:specs/m.vdm', 'specs/m.vdm']);
    assert.is(bad.code, 2);
    assert.match(bad.err, /'nosuchrev' is not a git revision/);
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('git diff driver: meaning for models, git\'s text diff for files without one, exit 0', () => {
  const dir = tempRepo();
  try {
    const m = path.join(dir, 'specs/m.vdm');
    fs.writeFileSync(m, fs.readFileSync(m, 'utf8').replace('as mlp', 'as ffn'));
    fs.writeFileSync(path.join(dir, 'specs/lib.vdm'), 'block twice(x) {\n  return 2 * x\n}\n');
    fs.writeFileSync(path.join(dir, '.gitattributes'), '*.vdm diff=vdm\n');
    git(dir, 'config', 'diff.vdm.command', `${process.execPath} ${path.join(root, 'bin/vdm.mjs')} diff --git`);
    const out = git(dir, 'diff');
    assert.match(out, /vdm diff a\/specs\/m\.vdm \(Mlps\) -> b\/specs\/m\.vdm \(Mlps\)/);
    assert.match(out, /blocks\.\{0-1\}\.mlp renamed to blocks\.\{0-1\}\.ffn/);
    assert.match(out, /--- a\/specs\/lib\.vdm\n\+\+\+ b\/specs\/lib\.vdm/);
    assert.match(out, /^\+  return 2 \* x$/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});


test('a byte order mark changes nothing: fmt and diff read the spec as the checker does', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-bom-'));
  try {
    const plain = path.join(dir, 'plain.vdm');
    const bom = path.join(dir, 'bom.vdm');
    fs.copyFileSync(path.join(pairs, 'depth-change', 'a.vdm'), plain);
    fs.writeFileSync(bom, '\uFEFF' + fs.readFileSync(plain, 'utf8'));
    const r = run([plain, bom], { failOnChange: true });
    assert.is(r.code, 0, r.err + r.out);
    let err = '';
    const fmtCode = runFmt([bom], true, { out: () => {}, err: (t) => { err += t; }, readStdin: () => '' });
    assert.is(err, '');
    assert.ok(fmtCode === 0 || fmtCode === 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
