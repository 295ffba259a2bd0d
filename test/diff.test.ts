// vdm diff: the spec pairs in test/diff/ (each with the parts of the JSON diff it must contain),
// DiT-S/2 -> DiT-B/2 totals, exit codes, formats, git revisions and the git diff driver.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkFile } from '../src/compiler/frontend/check.ts';
import { diffGraphs } from '../src/compiler/review/diff.ts';
import { compressPaths } from '../src/compiler/review/diff-paths.ts';
import { renderMarkdown, renderText } from '../src/compiler/review/diff-render.ts';
import { runDiff, type DiffOptions } from '../src/cli/diff.ts';
import { runFmt } from '../src/cli/fmt.ts';
import type { Graph } from '../src/compiler/ir/graph.ts';

const root = path.resolve(import.meta.dirname, '..');
const pairs = path.join(root, 'test/diff');

function graphOf(file: string): Graph {
  const r = checkFile(file);
  assert.ok(r.graph, `${file} checks: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r.graph!;
}

/** `actual` contains `expected`: objects by the keys given, arrays element by element (same length). */
function assertContains(actual: unknown, expected: unknown, at: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: expected a list, got ${JSON.stringify(actual)}`);
    assert.is(actual.length, expected.length, `${at}: ${JSON.stringify(actual)}`);
    expected.forEach((e, i) => assertContains(actual[i], e, `${at}[${i}]`));
  } else if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object', `${at}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertContains((actual as Record<string, unknown>)[k], v, `${at}.${k}`);
  } else {
    assert.equal(actual, expected, at);
  }
}

test('spec pairs: each JSON diff contains what its expect.json says', () => {
  const names = fs.readdirSync(pairs).filter((n) => fs.existsSync(path.join(pairs, n, 'expect.json'))).sort();
  assert.ok(names.length >= 9, `only ${names.length} pairs`);
  for (const name of names) {
    const dir = path.join(pairs, name);
    const diff = diffGraphs(graphOf(path.join(dir, 'a.vdm')), graphOf(path.join(dir, 'b.vdm')), { a: 'a.vdm', b: 'b.vdm' });
    const json = JSON.parse(JSON.stringify(diff));
    assertContains(json, JSON.parse(fs.readFileSync(path.join(dir, 'expect.json'), 'utf8')), name);
  }
});

test('a spec compared with itself, or with its formatted self, is no change', () => {
  const dir = path.join(pairs, 'comment-only');
  const a = graphOf(path.join(dir, 'a.vdm'));
  const b = graphOf(path.join(dir, 'b.vdm'));
  assert.ok(diffGraphs(a, a, { a: 'x', b: 'x' }).same);
  const diff = diffGraphs(a, b, { a: 'a', b: 'b' });
  assert.ok(diff.same);
  assert.match(renderText(diff, false), /no change/);
  assert.match(renderMarkdown(diff), /No change in meaning/);
});

test('DiT-S/2 -> DiT-B/2 as Markdown: params ~32.9M -> ~130.3M, MACs ~6.06G -> ~23.0G', () => {
  const out: string[] = [];
  const code = runDiff([path.join(root, 'specs/dit-s-2.vdm'), path.join(root, 'specs/dit-b-2.vdm')],
    { format: 'markdown', failOnChange: false, git: false, color: false, dims: {} }, { out: (t) => out.push(t), err: (t) => out.push(t) });
  assert.is(code, 0);
  const md = out.join('');
  const params = /^\| params \| ([\d.]+)M \| ([\d.]+)M \| \+[\d.]+M \| \+[\d.]+% \|$/m.exec(md);
  const macs = /^\| MACs \| ([\d.]+)G \| ([\d.]+)G \|/m.exec(md);
  assert.ok(params && macs, md.slice(0, 600));
  assert.ok(Math.abs(Number(params![1]) - 32.9) < 0.06 && Math.abs(Number(params![2]) - 130.3) < 0.06, params![0]);
  assert.ok(Math.abs(Number(macs![1]) - 6.06) < 0.01 && Math.abs(Number(macs![2]) - 23.0) < 0.05, macs![0]);
  assert.match(md, /\| changed \| `blocks\.\{0-11\}\.attn` \(12x\) heads: 6 -> 12 \|/);
  assert.match(md, /^\|---\|---:\|---:\|---:\|---:\|$/m);
});

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

test('compressed paths: index runs, several loop levels, different changes kept apart', () => {
  const paths = ['s.0.b.0.x', 's.0.b.1.x', 's.1.b.0.x', 's.1.b.1.x', 'blocks.3', 'blocks.4', 'blocks.5', 'blocks.9', 'other.1'];
  const out = compressPaths(paths, (p) => p, (p) => (p === 'other.1' ? 'different' : 'same'), (m, p) => `${p}/${m.length}`);
  assert.equal(out, ['s.{0-1}.b.{0-1}.x/4', 'blocks.{3-5,9}/4', 'other.1/1']);
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
    assertContains(diff.params[0], { path: 'proj_in.linear.weight', a: [4, 32], b: [4, 64] }, 'params[0]');
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
