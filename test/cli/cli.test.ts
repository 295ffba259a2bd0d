// The vdm command line, run as a user would: exit codes, streams, formats, no stack traces.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vdmSync, noTrace } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-cli-'));
const good = path.join(dir, 'good.vdm');
const bad = path.join(dir, 'bad.vdm');
const lib = path.join(dir, 'lib.vdm');
fs.writeFileSync(good, 'model Small {\n  dims b, c = 4, h = 8, w = 8\n  input x : image[b, c, h, w]\n  y = conv(x, over: (h, w), kernel: 3, out: 16) as stem\n  output o = linear(silu(y), 4) as head\n}\n');
fs.writeFileSync(bad, 'model Bad {\n  dims b, c = 4, h = 31, w = 32\n  input x : image[b, c, h, w]\n  y = patchify(x, patch: (h: 2, w: 2))\n  output o = linear(y, dpeth)\n}\n');
fs.writeFileSync(lib, 'block mlp(x) {\n  return linear(gelu(linear(x, 8)), size(x, c))\n}\n');

const vdm = (...args: string[]) => vdmSync(args, { timeout: 60_000 });


test('vdm check: valid files exit 0 and say ok; a file with only blocks is checked without a model', () => {
  const r = vdm('check', good, lib);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /ok {2}.*good\.vdm {2}\(model Small: /);
  assert.match(r.out, /ok {2}.*lib\.vdm {2}\(no model/);
  assert.is(r.err, '');
});

test('vdm check: errors go to stderr with location, gutter, carets and hints; exit 1', () => {
  const r = vdm('check', good, bad);
  assert.is(r.code, 1);
  assert.match(r.out, /good\.vdm/);
  assert.match(r.err, /bad\.vdm:4:19: error VDM031: patch size h=2 does not divide h=31\n 4 \|   y = patchify\(x, patch: \(h: 2, w: 2\)\)\n   \| {19}\^+\n   hint: set h to a multiple of 2 \(e\.g\. `--dim h=32`\)/);
  assert.match(r.err, /bad\.vdm:5:24: error VDM010: unknown name 'dpeth'/);
  assert.match(r.err, /bad\.vdm: 2 errors/);
  noTrace(r.err);
});

test('vdm check --dim fixes a size; malformed --dim is VDM070', () => {
  const fixed = vdm('check', bad, '--dim', 'h=32');
  assert.is(fixed.code, 1); // dpeth remains
  assert.not.match(fixed.err, /VDM031/, 'h=32 makes the patch fit');
  assert.match(fixed.err, /bad\.vdm: 1 error\b/);
  const r = vdm('check', good, '--dim', 'h=abc');
  assert.is(r.code, 1);
  assert.match(r.err, /error VDM070: --dim h=abc: the size must be a positive integer/);
  const unknown = vdm('check', good, '--dim', 'q=3');
  assert.is(unknown.code, 1);
  assert.match(unknown.err, /VDM070: --dim q: model 'Small' has no dim 'q'/);
});

test('vdm info --json prints exactly params, macs, flops, activationBytes, the planned forward pass and layers', () => {
  const r = vdm('info', good, '--json', '--dim', 'b=2');
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(Object.keys(j), ['params', 'macs', 'flops', 'activationBytes', 'forward', 'layers']);
  assert.equal(Object.keys(j.forward), ['params', 'activations', 'other', 'total', 'dispatches']);
  assert.is(j.forward.params, 4 * j.params);
  assert.ok(j.forward.activations > 0 && j.forward.activations <= j.activationBytes);
  assert.is(j.params, (16 * 4 * 9 + 16) + (16 * 4 + 4));
  assert.is(j.macs, 2 * 16 * 64 * 4 * 9 + 2 * 64 * 16 * 4);
  assert.is(j.flops, 2 * j.macs);
  assert.equal(Object.keys(j.layers[0]), ['path', 'op', 'shape', 'params', 'macs', 'activationBytes']);
  const stem = j.layers.find((l: { path: string }) => l.path === 'stem');
  assert.equal(stem.shape, [['b', 2], ['c', 16], ['h', 8], ['w', 8]]);
  assert.is(j.activationBytes, j.layers.reduce((s: number, l: { activationBytes: number }) => s + l.activationBytes, 0));
});

test('vdm info --train: the training step\'s peak memory, kept and with --recompute', () => {
  const r = vdm('info', path.join(repo, 'specs/tiny-video-dit.vdm'), '--train', '--json', '--dim', 'b=2');
  assert.is(r.code, 0, r.err);
  const t = JSON.parse(r.out).training;
  assert.is(t.batch, 2);
  assert.is(t.total, t.arenas + t.activations + t.other);
  assert.is(t.recompute.arenas, t.arenas);
  assert.ok(t.recompute.activations < t.activations && t.recompute.dispatches > t.dispatches, JSON.stringify(t));
  const text = vdm('info', path.join(repo, 'specs/tiny-video-dit.vdm'), '--train', '--dim', 'b=2');
  assert.match(text.out, /training step \(batch 2, \d+ dispatches\): peak device memory [\d.]+MiB/);
  assert.match(text.out, /with --recompute \(\d+ dispatches[^)]*\): peak [\d.]+MiB/);
});

test('vdm info: a table with shapes, human units, totals and the MACs legend', () => {
  const r = vdm('info', path.join(repo, 'specs/dit-xl-2.vdm'));
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^path +op +output shape +params +MACs +activations$/m);
  assert.match(r.out, /\[b=1, c=1152, /);
  assert.match(r.out, /total {2}params 674\.8M \(674,834,720\) {2}MACs 118\.6G {2}FLOPs 237\.2G/);
  assert.match(r.out, /MACs = multiply-accumulates \(the DiT paper's 'Gflops' are MACs\); FLOPs = 2 x MACs/);
});

test('vdm info --graph prints the graph IR; a file without a model is VDM050', () => {
  const r = vdm('info', good, '--graph');
  assert.is(r.code, 0, r.err);
  const g = JSON.parse(r.out);
  assert.is(g.model, 'Small');
  assert.equal(g.nodes.map((n: { op: string }) => n.op), ['input', 'conv', 'silu', 'linear']);
  const none = vdm('info', lib);
  assert.is(none.code, 1);
  assert.match(none.err, /error VDM050: .*defines no model/);
});

test('usage problems: unknown command or flag, missing file argument: usage and exit 2, no trace', () => {
  for (const args of [['frobnicate'], ['check'], ['info', good, '--jsn'], []]) {
    const r = vdm(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, /Usage: vdm <command>|vdm (check|info)/);
    assert.match(r.err, /\nvdm: /);
    noTrace(r.err);
  }
  const missing = vdm('check', path.join(dir, 'nope.vdm'));
  assert.is(missing.code, 1);
  assert.match(missing.err, /error VDM002: cannot read .*nope\.vdm: no such file/);
});

test('vdm --help exits 0 and lists the commands; vdm doctor reports an adapter or says why not', () => {
  const help = vdm('--help');
  assert.is(help.code, 0);
  assert.match(help.out, /vdm check <files\.\.>/);
  assert.match(help.out, /vdm doctor/);
  const doctor = vdm('doctor');
  assert.ok(doctor.code === 0 || doctor.code === 1, `exit ${doctor.code}`);
  assert.match(doctor.out + doctor.err, /^vdm doctor: /m);
  noTrace(doctor.err);
});

test('vdm --version prints the version of package.json and exits 0', () => {
  const version = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version;
  const r = vdm('--version');
  assert.is(r.code, 0, r.err);
  assert.is(r.out, `${version}\n`);
  assert.is(r.err, '');
  assert.match(vdm('--help').out, /--version +show the version of vdm/);
});

test.run();
